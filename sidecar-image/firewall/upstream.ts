// How the firewall reaches what it allows. With a next hop (egress) every request goes
// there in absolute form over one keep-alive pool, and passthrough tunnels become CONNECT
// requests to it; this is the contract egress implements:
//   intercepted HTTPS   METHOD https://host[:port]/path HTTP/1.1   (WebSocket upgrades too)
//   plain HTTP          METHOD http://host[:port]/path HTTP/1.1
//   passthrough         CONNECT host:port HTTP/1.1, then raw bytes
// Without a next hop the firewall dials upstreams itself (a bottle without credential
// routes runs no egress; tests; the "firewall alone" benchmark), trusting the system roots
// plus --upstream-ca, with --resolve overrides, and never a name that resolves only to
// loopback or link-local addresses (lib/http/lookup.ts), as egress does; and with egress's
// deadlines (lib/http/upstream-deadlines.ts): a dial, TLS included, and a response head
// that do not come in time fail with a TIMEOUT, which the firewall answers 504; so does a
// request body the upstream does not read within the dial's and the head's deadlines
// together (the body is held whole, so its upload runs at the upstream's pace alone).
// Towards the next hop the same deadlines bound the firewall's own waits on egress: its dial
// takes the connect deadline, and egress, which times the upstream and answers 504 itself,
// naming it, is given its own deadlines and a margin (nextHopWaits) to answer: the head of
// an answer (and as long to take the whole request), and the answer to a CONNECT. An egress that took a request and hung would
// otherwise hold the agent for good.
// Plain requests go through the project's own HTTP/1.1 client either way
// (lib/http/hop-client.ts): one pool to the next hop, or one per origin dialed directly
// (lib/http/origin-pools.ts, as egress's), so a pooled connection closed under a request
// is noticed, and retried, alike in node and deno. Upgrades take node's client, which
// hands the socket over, through agents that do not pool.
import { Buffer } from "node:buffer";
import type { EventEmitter } from "node:events";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { BbError } from "../../lib/errors.ts";
import { createHopClient, type HopResponse } from "../../lib/http/hop-client.ts";
import { MAX_HEADER_BYTES } from "../../lib/http/limits.ts";
import { routableLookup } from "../../lib/http/lookup.ts";
import { createOriginPools } from "../../lib/http/origin-pools.ts";
import { armDeadlines, armHeadDeadline, DEFAULT_DEADLINES, type Deadlines, dialWithin, NEXT_HOP, nextHopWaits, timedOut } from "../../lib/http/upstream-deadlines.ts";
import { lazyClientContext, lazyHttpsAgent } from "../../lib/tls/upstream-agents.ts";

export interface Endpoint {
  host: string;
  port: number;
}

export interface Target extends Endpoint {
  scheme: "http" | "https";
}

export interface UpstreamOptions {
  /** Egress; when absent the firewall dials upstreams itself. */
  nextHop?: Endpoint;
  /** Extra CA certificates (PEM) to trust when dialing directly. */
  upstreamCa?: string[];
  /** Host name -> address to dial instead of resolving it (direct dialing only). */
  resolve?: ReadonlyMap<string, Endpoint>;
  /** How long a direct dial and the head of an answer may take (DEFAULT_DEADLINES). */
  deadlines?: Partial<Deadlines>;
}

export interface RequestInit {
  method: string;
  path: string;
  headers: http.OutgoingHttpHeaders;
}

/** An answer: its status, its headers as sent, and its body without framing. */
export type Answer = HopResponse;

/**
 * A request under way: "response" (an Answer) or "error" before one; reusedSocket for
 * lib/http/retry.ts; destroy() abandons it.
 */
export interface Sent extends EventEmitter {
  readonly reusedSocket: boolean;
  destroy(): void;
}

export interface Upstream {
  /** Send a request whose body is at hand (none for upgrades, which use upgrade()). */
  send(target: Target, init: RequestInit, body?: Buffer): Sent;
  /** A WebSocket upgrade, on a fresh connection of its own (never pooled: it is handed over after the 101). */
  upgrade(target: Target, init: RequestInit): http.ClientRequest;
  /** A connected byte tunnel to host:port (for passthrough hosts). */
  tunnel(host: string, port: number): Promise<net.Socket>;
  close(): void;
}

/** "host:port" for CONNECT and absolute URLs; IPv6 in brackets, default port omitted when asked. */
export function authority(host: string, port: number, defaultPort?: number): string {
  const h = host.includes(":") ? `[${host}]` : host;
  return port === defaultPort ? h : `${h}:${port}`;
}

const defaultPort = (scheme: Target["scheme"]) => (scheme === "https" ? 443 : 80);

export function createUpstream(opts: UpstreamOptions): Upstream {
  const secureContext = lazyClientContext(opts.upstreamCa);
  const upgradeAgent = lazyHttpsAgent({}, secureContext); // no pooling: upgraded sockets leave the agent
  const dialAddress = (host: string, port: number): Endpoint => opts.resolve?.get(host) ?? { host, port };
  // Asked only for names: an IP literal (the next hop's, a --resolve mapping's, an
  // allowed IP's) is dialed as it is.
  const lookup = routableLookup("the firewall");
  const deadlines: Deadlines = { ...DEFAULT_DEADLINES, ...opts.deadlines };
  const hopWaits = nextHopWaits(deadlines);
  // Not through `lookup`: the next hop is the operator's, on loopback by design.
  const dialHop = (hop: Endpoint) => dialWithin(hop, NEXT_HOP, deadlines.connectMs);
  const hop = opts.nextHop ? createHopClient(opts.nextHop, { peer: NEXT_HOP, dial: () => dialHop(opts.nextHop!).then((s) => s.setNoDelay(true)) }) : undefined;
  // Dialed directly: the dial's deadline, TLS included, is the pool's.
  const pools = opts.nextHop ? undefined : createOriginPools({ lookup, secureContext, connectMs: deadlines.connectMs });
  const origin = (target: Target) => `${target.scheme}://${authority(target.host, target.port, defaultPort(target.scheme))}`;
  const absolute = (target: Target, path: string) => `${origin(target)}${path}`;
  // Certificates are checked against the name the agent asked for, even when --resolve
  // sends the connection elsewhere; SNI must not carry an IP literal.
  const servername = (target: Target) => (net.isIP(target.host) ? undefined : target.host);

  /**
   * The next hop's refusal of a CONNECT. egress says why in the body it sends with the head
   * (its rawFail: "egress: <reason>"), passed on when it came in that read; its 504, an
   * upstream it gave up on, stays a timeout in egress's words, answered 504 here too.
   */
  function hopRefusal(target: string, status: string, rest: Buffer): Error {
    const said = rest.subarray(0, 1024).toString("utf8").trim().replace(/^egress: /, "").replace(/[^\x20-\x7e]+/g, " ");
    if (/^HTTP\/1\.[01] 504\b/.test(status)) return new BbError("TIMEOUT", said || `next hop timed out on CONNECT ${target} (${status})`);
    return new Error(`next hop refused CONNECT ${target}: ${status}${said ? ` (${said})` : ""}`);
  }

  /** Send CONNECT to the next hop and hand back the socket once it answers 200; a TIMEOUT
   * when it does not answer within hopWaits.connectAnswerMs. */
  async function connectVia(hop: Endpoint, host: string, port: number): Promise<net.Socket> {
    const s = await dialHop(hop);
    const target = authority(host, port);
    s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    return new Promise((resolve, reject) => {
      let head = Buffer.alloc(0);
      const ms = hopWaits.connectAnswerMs;
      const late = setTimeout(() => fail(timedOut(`${NEXT_HOP} did not answer CONNECT ${target} within ${ms / 1000} s`, "connect answer")), ms);
      const fail = (e: Error) => {
        clearTimeout(late);
        s.destroy();
        reject(e);
      };
      const onEnd = () => fail(new Error(`next hop closed the connection before answering CONNECT ${target}`));
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf("\r\n\r\n");
        if (end === -1) {
          if (head.length > 16384) fail(new Error("next hop sent an oversized CONNECT response"));
          return;
        }
        clearTimeout(late);
        s.off("data", onData);
        s.off("error", fail);
        s.off("end", onEnd);
        const status = head.subarray(0, head.indexOf("\r\n")).toString("latin1");
        if (!/^HTTP\/1\.[01] 200\b/.test(status)) return fail(hopRefusal(target, status, head.subarray(end + 4)));
        s.pause();
        if (end + 4 < head.length) s.unshift(head.subarray(end + 4));
        resolve(s);
      };
      s.on("data", onData);
      s.once("error", fail);
      s.once("end", onEnd);
    });
  }

  const upstream: Upstream = {
    send(target, init, body) {
      if (hop) {
        const sent = hop.request({ method: init.method, target: absolute(target, init.path), headers: init.headers, body });
        armHeadDeadline(sent, origin(target), hopWaits.headMs, { via: NEXT_HOP, uploadMs: hopWaits.headMs });
        return sent;
      }
      const to = dialAddress(target.host, target.port);
      const pool = pools!.poolFor({ origin: origin(target), host: to.host, port: to.port, secure: target.scheme === "https", servername: servername(target) });
      const sent = pool.request({ method: init.method, target: init.path, headers: init.headers, body });
      armHeadDeadline(sent, origin(target), deadlines.headMs, { uploadMs: deadlines.connectMs + deadlines.headMs });
      return sent;
    },
    upgrade(target, init) {
      if (opts.nextHop) {
        const req = http.request({
          host: opts.nextHop.host,
          port: opts.nextHop.port,
          method: init.method,
          path: absolute(target, init.path),
          headers: init.headers,
          maxHeaderSize: MAX_HEADER_BYTES,
          agent: false,
        });
        armDeadlines(req, origin(target), { connectMs: deadlines.connectMs, headMs: hopWaits.headMs }, NEXT_HOP);
        return req;
      }
      const to = dialAddress(target.host, target.port);
      const common = { host: to.host, port: to.port, lookup, method: init.method, path: init.path, headers: init.headers, maxHeaderSize: MAX_HEADER_BYTES };
      const req = target.scheme === "http" ? http.request({ ...common, agent: false }) : https.request({ ...common, servername: servername(target), agent: upgradeAgent.get() });
      armDeadlines(req, origin(target), deadlines);
      return req;
    },
    tunnel(host, port) {
      if (opts.nextHop) return connectVia(opts.nextHop, host, port);
      return dialWithin(dialAddress(host, port), authority(host, port), deadlines.connectMs, lookup);
    },
    close() {
      hop?.close();
      pools?.close();
      upgradeAgent.destroy();
    },
  };
  return upstream;
}
