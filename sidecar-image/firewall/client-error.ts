// What the firewall answers when node's HTTP parser gives up on a request (the servers'
// 'clientError'): a malformed request, a header block over the limit, a request that did
// not arrive in time. Node's own answer is a bare "400 Bad Request" written just before it
// destroys the socket, so an agent still sending (a body behind a bad request line) meets
// a reset instead and never learns why. Here the answer says in one line what the parser
// could not take, and the socket lingers (linger.ts) so the agent reads it.
import type http from "node:http";
import type net from "node:net";
import { closingAnswer, type Linger, isLingering, lingeringClose } from "./linger.ts";

/** node's code for a request (head or body) that missed headersTimeout or requestTimeout;
 * deadlines.ts raises the same for the tunnels it times. */
export const REQUEST_TIMEOUT = "ERR_HTTP_REQUEST_TIMEOUT";

interface ParserError extends Error {
  code?: string;
  /** llhttp's words for what it could not parse. */
  reason?: string;
}

const says = (status: number, why: string) => ({ status, why });

/** The status to answer `e` with and why the request cannot be taken, or null for an
 * error that needs no answer: the socket failed (ECONNRESET, EPIPE), or the agent ended
 * its side mid-request (HPE_INVALID_EOF_STATE) and has gone. */
export function parserAnswer(e: ParserError, maxHeaderBytes: number): { status: number; why: string } | null {
  if (e.code === REQUEST_TIMEOUT) return says(408, "it did not arrive whole in the time allowed");
  if (e.code === "HPE_HEADER_OVERFLOW") return says(431, `its header block is over ${maxHeaderBytes / 1024} KiB`);
  if (e.code === "HPE_CHUNK_EXTENSIONS_OVERFLOW") return says(413, "its chunk extensions are too large");
  if (!e.code?.startsWith("HPE_") || e.code === "HPE_INVALID_EOF_STATE") return null;
  // Deno's parser gives no reason for most errors, only "Parse Error".
  const reason = e.reason && e.reason !== "Parse Error" ? e.reason.charAt(0).toLowerCase() + e.reason.slice(1) : "it is not well-formed HTTP/1.1";
  return says(400, `the firewall cannot parse it: ${reason} (${e.code})`);
}

/**
 * Answer `server`'s client errors as parserAnswer says, then linger. An answer never
 * interleaves with another: responses in flight for earlier requests on the socket are
 * let finish first, and when the error is in the body of a request already answered (a
 * refusal that drains the body), that answer stands and the socket just lingers.
 */
export function answerClientErrors(server: http.Server, o: { linger: Linger; maxHeaderBytes: number; onAnswer?: (status: number, why: string) => void }): void {
  // Responses not finished yet, per socket; node's socket._httpMessage names only the one
  // writing, and is internal.
  const inFlight = new WeakMap<net.Socket, Map<http.ServerResponse, http.IncomingMessage>>();
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket;
    const map = inFlight.get(socket) ?? new Map();
    inFlight.set(socket, map.set(res, req));
    const done = () => map.delete(res);
    res.once("finish", done);
    res.once("close", done);
  });
  const handled = new WeakSet<net.Socket>();
  server.on("clientError", (e: ParserError, socket: net.Socket) => {
    // node's parser, once failed, fails again on every later chunk the linger lets in.
    if (handled.has(socket) || isLingering(socket)) return;
    handled.add(socket);
    const answer = parserAnswer(e, o.maxHeaderBytes);
    if (!answer || !socket.writable) return void socket.destroy();
    let answered = false; // the failed request's answer is out already
    const settle = () => {
      if (socket.destroyed || isLingering(socket)) return;
      const waitFor = [...(inFlight.get(socket) ?? [])].find(([res, req]) => res.headersSent || req.complete);
      if (waitFor) {
        const [res, req] = waitFor;
        answered ||= !req.complete;
        res.once("finish", settle);
        res.once("close", settle);
        return;
      }
      // node's parser goes on reading (and failing on) what the agent still sends, on
      // sockets it consumes natively too, where no 'data' event fires for a reader here.
      const readElsewhere = () => socket.bytesRead;
      if (answered) return lingeringClose(socket, o.linger, { readElsewhere });
      o.onAnswer?.(answer.status, answer.why);
      const text = `bot-bottle firewall: cannot take the request: ${answer.why}\n`;
      lingeringClose(socket, o.linger, {
        readElsewhere,
        answer: closingAnswer(answer.status, text),
      });
    };
    settle();
  });
}
