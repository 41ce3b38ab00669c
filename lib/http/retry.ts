// A keep-alive connection a server closes as idle can be closed just as a proxy writes the
// next request on it. That request then fails with ECONNRESET ("socket hang up") or EPIPE
// before any answer, through no fault of the client or the server, and the agent would get
// a 502 for nothing. Such a request is sent again, on another connection, when that is
// safe, as Go's net/http transport does: it went out on a pooled socket, no answer to it
// began, the caller has its whole body at hand, and sending it twice cannot do twice what
// the client meant once (GET, HEAD, OPTIONS, TRACE, or a request carrying an
// Idempotency-Key). A fresh connection failing is an answer: it is never retried. Nor is
// a request a deadline gave up on (upstream-deadlines.ts destroys it with a TIMEOUT, not
// a reset): the upstream may still be at work on it, and waiting again would double the wait.
import type http from "node:http";

const REPLAYABLE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);
const CLOSED_UNDER_US = new Set(["ECONNRESET", "EPIPE"]);

/** Whether a request with this method and these headers may be sent a second time. */
export function replayable(method: string | undefined, headers: http.OutgoingHttpHeaders | http.IncomingHttpHeaders): boolean {
  if (REPLAYABLE_METHODS.has((method ?? "GET").toUpperCase())) return true;
  return headers["idempotency-key"] !== undefined || headers["x-idempotency-key"] !== undefined;
}

/**
 * Whether `req`, which failed with `e` before any answer, should go again on a fresh
 * connection: the connection was a reused one the server may have closed as we wrote.
 * `replayable` is the caller's word that the method allows it and the body is at hand.
 */
export function retryOnFreshConnection(req: Pick<http.ClientRequest, "reusedSocket">, e: NodeJS.ErrnoException, replayable: boolean): boolean {
  return replayable && req.reusedSocket && CLOSED_UNDER_US.has(e.code ?? "");
}
