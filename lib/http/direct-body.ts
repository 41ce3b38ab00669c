// An answer's body relayed onto the client's socket itself once node's ServerResponse has
// written the head. Through res.write every chunk (a TLS record, 16 KiB at most) paid for
// the ServerResponse's checks, a cork and a process.nextTick to uncork, besides the
// socket's own write: 4-8% of the chain's CPU per MiB relayed (paired runs of the proxy
// bench's chain, this way and through res in turn). Only where the bytes go out exactly as they come: a body
// framed by Content-Length (so not chunk-encoded anew), on node (Deno's ServerResponse
// does not write through res.socket), to the response the socket is serving now.
import type { Buffer } from "node:buffer";
import type http from "node:http";
import type net from "node:net";
import process from "node:process";
import type { Readable } from "node:stream";
import { headerValues } from "./response-head.ts";

/**
 * The client's socket, when the body of the answer `res` relays (its status and headers as
 * they came) may be written to it directly after the head; null when it goes through res.
 */
export function directSocket(res: http.ServerResponse, answer: { status: number; rawHeaders: string[] }): net.Socket | null {
  if (process.versions.deno !== undefined) return null;
  const socket = res.socket;
  // A pipelined request's response has no socket until the ones before it are done.
  if (!socket || res.destroyed || res.writableEnded) return null;
  if (res.req?.method === "HEAD" || answer.status === 204 || answer.status === 304 || answer.status < 200) return null;
  const length = headerValues(answer.rawHeaders, "content-length");
  if (length.length !== 1 || headerValues(answer.rawHeaders, "transfer-encoding").length) return null;
  return socket;
}

/** What each chunk passes on its way (egress's SecretMasker): the same bytes out as in, over the whole body. */
interface ChunkMask {
  push(chunk: Buffer): Buffer;
  /** What it still holds, once the body has ended. */
  flush(): Buffer;
}

/**
 * Write the head of `res` (already given to writeHead), then `body` (through `mask` when
 * given) onto `socket` as it comes, held back while the socket is full, and end `res` after
 * it, so node's server goes on to the connection's next request as it would have.
 */
export function relayDirect(res: http.ServerResponse, socket: net.Socket, body: Readable, mask?: ChunkMask): void {
  // The head and what of the body is already here leave in one write (one TLS record for a
  // small answer), as through res; the head waits no longer than this tick for it.
  socket.cork();
  res.flushHeaders();
  let waiting = false;
  const resume = () => {
    waiting = false;
    body.resume();
  };
  const write = (bytes: Buffer) => {
    if (!bytes.length || socket.write(bytes) || waiting) return;
    waiting = true;
    body.pause();
    socket.once("drain", resume);
  };
  body.on("data", (chunk: Buffer) => write(mask ? mask.push(chunk) : chunk));
  body.once("end", () => {
    if (mask) write(mask.flush());
    socket.off("drain", resume);
    res.end();
  });
  process.nextTick(() => socket.uncork());
}
