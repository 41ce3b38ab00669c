// How long a proxy of the bottle's waits on an upstream before it answers the agent 504
// itself: egress, and the firewall when it dials upstreams directly (no egress). For the
// connection (a dial the far side never answers would otherwise wait out the OS's connect
// timeout, minutes) and for the head of the answer (an upstream that takes a request and
// says nothing would otherwise hold it for good). The head's wait is long by default: an
// LLM API answers a request that does not stream only once it has written the whole reply.
// Once the head is here nothing is timed: a slow streamed body is the upstream's right.
import type { Buffer } from "node:buffer";
import type http from "node:http";
import type net from "node:net";
import tls from "node:tls";
import { BbError } from "../errors.ts";
import { dialDeadline, tcpDial } from "./dial.ts";

export interface Deadlines {
  /** A fresh connection's dial, the name lookup and a TLS handshake included. */
  connectMs: number;
  /** From the whole request written to the head of the answer. */
  headMs: number;
}

export const DEFAULT_DEADLINES: Deadlines = { connectMs: 30_000, headMs: 10 * 60_000 };

/**
 * What the firewall gives egress, its next hop, past egress's own deadlines (the same
 * flags, the same defaults) before it answers 504 itself: egress's 504, which names the
 * upstream and the wait that ran out, comes back first. Without a wait of its own an
 * egress that took a request and hung would hold the agent for good.
 */
export const NEXT_HOP_MARGIN_MS = 5_000;

/** How long the firewall waits on its next hop: for the head of an answer (egress's dial,
 * then its head deadline), and for the answer to a CONNECT (egress's dial). */
export function nextHopWaits(d: Deadlines): { headMs: number; connectAnswerMs: number } {
  return { headMs: d.connectMs + d.headMs + NEXT_HOP_MARGIN_MS, connectAnswerMs: d.connectMs + NEXT_HOP_MARGIN_MS };
}

/** The peer the firewall's waits on egress name (the hop client's name for it too). */
export const NEXT_HOP = "the next hop";

const seconds = (ms: number) => `${ms / 1000} s`;

/** The error a deadline destroys an upstream with: a TIMEOUT, which the retry never sends
 * again (lib/http/retry.ts) and the proxy answers 504. */
export function timedOut(message: string, deadline: "connect" | "head" | "upload" | "connect answer"): BbError {
  return new BbError("TIMEOUT", message, { details: { deadline } });
}

export function isUpstreamTimeout(e: unknown): e is BbError {
  return e instanceof BbError && e.code === "TIMEOUT";
}

/** The status to answer the agent for a request its upstream failed: 504 when a deadline gave up on it. */
export function upstreamFailureStatus(e: unknown): 502 | 504 {
  return isUpstreamTimeout(e) ? 504 : 502;
}

function dialTimedOut(origin: string, ms: number, step: "connect" | "tls handshake"): BbError {
  const what = step === "connect" ? "did not accept a connection" : "accepted a connection but did not finish the TLS handshake";
  return timedOut(`${origin} ${what} within ${seconds(ms)}`, "connect");
}

/** A TCP connection to `to`, or a TIMEOUT naming `origin` when it is not made within `ms`. */
export function dialWithin(to: { host: string; port: number }, origin: string, ms: number, lookup?: net.LookupFunction): Promise<net.Socket> {
  return tcpDial(to, { lookup, timeoutMs: ms, late: () => dialTimedOut(origin, ms, "connect") });
}

/** TLS options for dialTlsWithin: whom the certificate must name, whom to trust, a session to resume. */
interface TlsDial {
  /** SNI, and the name the certificate is checked against; absent for an IP literal. */
  servername?: string;
  secureContext: tls.SecureContext;
  session?: Buffer;
  /** Told each session the server offers for resuming. */
  onSession?: (session: Buffer) => void;
}

/**
 * A TLS connection to `to`, its handshake done and the certificate checked, or a TIMEOUT
 * naming `origin` when the connection and the handshake are not made within `ms`.
 */
export function dialTlsWithin(to: { host: string; port: number }, origin: string, ms: number, o: TlsDial & { lookup?: net.LookupFunction }): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: to.host, port: to.port, servername: o.servername, secureContext: o.secureContext, session: o.session, ...(o.lookup ? { lookup: o.lookup } : {}) });
    s.setNoDelay(true);
    if (o.onSession) s.on("session", o.onSession);
    dialDeadline(s, ms, (step) => s.destroy(dialTimedOut(origin, ms, step)));
    s.once("secureConnect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

/** What the head deadline needs of a request: node's ClientRequest, or a HopRequest (hop-client.ts). */
interface Timed {
  once(event: "finish" | "response" | "upgrade" | "close", listener: () => void): unknown;
  destroy(e: Error): void;
}

/**
 * Time `req` against `d`: the dial of the connection it is given, unless that comes from
 * the keep-alive pool (already connected), and the head of its answer (armHeadDeadline).
 * Either deadline destroys the request, and so its connection, with a TIMEOUT. `via`: the
 * request goes to a proxy so named, not to `origin`, and the errors say so.
 */
export function armDeadlines(req: http.ClientRequest, origin: string, d: Deadlines, via?: string): void {
  req.once("socket", (s) => dialDeadline(s, d.connectMs, (step) => req.destroy(dialTimedOut(via ?? origin, d.connectMs, step))));
  armHeadDeadline(req, origin, d.headMs, { via });
}

/** Who a head deadline names besides the origin, and whether the upload is timed too. */
export interface HeadDeadlineOptions {
  /** The proxy the request goes through to `origin` (the firewall's next hop). */
  via?: string;
  /**
   * The request must also be all written within this long of being armed: for a body the
   * sender holds whole (the firewall's, read and scanned before it goes), whose upload
   * then runs at the far side's pace alone. A far side that accepts and never reads would
   * otherwise hold the request for good, the head's clock never started.
   */
  uploadMs?: number;
}

/**
 * The head of `req`'s answer must begin within `ms` of the last of the request being
 * written (a slow upload is the agent's, unless o.uploadMs times it); a response or an
 * upgrade stops the clock, and a request already answered before it was all written never
 * starts it. Late, the request is destroyed with a TIMEOUT, naming `origin` (and o.via).
 */
export function armHeadDeadline(req: Timed, origin: string, ms: number, o: HeadDeadlineOptions = {}): void {
  let answered = false;
  let head: ReturnType<typeof setTimeout> | undefined;
  const who = (what: string, within: number) => (o.via ? `${o.via} ${what} for ${origin} within ${seconds(within)}` : `${origin} ${what} within ${seconds(within)}`);
  const upload = o.uploadMs === undefined ? undefined : setTimeout(() => req.destroy(timedOut(who("did not read the whole request", o.uploadMs!), "upload")), o.uploadMs);
  // An upstream may answer before the request is all written (a 413 to a big upload).
  req.once("finish", () => {
    clearTimeout(upload);
    if (answered) return;
    head = setTimeout(() => req.destroy(timedOut(who("sent no response head", ms), "head")), ms);
  });
  const stop = () => {
    answered = true;
    clearTimeout(upload);
    clearTimeout(head);
  };
  for (const event of ["response", "upgrade", "close"] as const) req.once(event, stop);
}
