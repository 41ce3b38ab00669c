// A lingering close, as nginx's lingering_close: after an answer that ends the connection
// while the agent may still be sending (a refused upload, a refused CONNECT or upgrade, a
// WebSocket close frame), the firewall ends its side and keeps reading what comes,
// discarding it, until the agent ends its side or a bound is reached, and only then
// destroys the socket. Linux answers a socket closed with unread bytes in its receive
// buffer (or bytes arriving after) with a reset, and a client that is still writing then
// fails on EPIPE or ECONNRESET, often before it has read the answer already on its way.
//
// What is read here is never held, scanned, forwarded or charged to the body budget; the
// bounds (quiet time, total time, bytes) keep a client that never stops sending, or a
// flood of refused uploads, from holding sockets for longer than totalMs each.
import { Buffer } from "node:buffer";
import http from "node:http";
import type net from "node:net";
import type { Duplex } from "node:stream";

export interface Linger {
  /** The agent sent nothing for this long: done. */
  quietMs: number;
  /** The longest a socket lingers, however busy. */
  totalMs: number;
  /** The most bytes read before the socket is cut anyway. */
  maxBytes: number;
}

/** nginx's lingering_timeout is 5 s and lingering_time 30 s; an agent on the same machine
 * that is going to stop does so sooner. 64 MiB is four of the largest bodies the firewall scans. */
export const LINGER: Linger = { quietMs: 3000, totalMs: 15_000, maxBytes: 64 * 1024 * 1024 };

/** How often a socket read by someone else (node's HTTP parser) is checked for what it read. */
const CHECK_MS = 100;

const lingering = new WeakSet<Duplex>();

/** Whether `socket` is lingering: anything parsed from it now is discarded, never served. */
export function isLingering(socket: Duplex): boolean {
  return lingering.has(socket);
}

export interface LingerOptions {
  /** The last bytes to write before the firewall's side ends. */
  answer?: string | Buffer;
  /** Someone else reads the socket (node's HTTP parser, whose body bytes go to a resumed
   * request), and this says how many bytes it has read (the socket's bytesRead, checked
   * every 100 ms). Otherwise this reads and drops every chunk itself. */
  readElsewhere?: () => number;
  /** Told each chunk read (not with readElsewhere); true ends the linger at once (a
   * WebSocket client's close frame: the closing handshake is done). */
  done?: (chunk: Buffer) => boolean;
}

/** End the firewall's side of `socket` (after `o.answer`), drain what the agent still sends
 * within `limits`, then destroy it; nothing is left running once it is destroyed. */
export function lingeringClose(socket: Duplex, limits: Linger, o: LingerOptions = {}): void {
  if (lingering.has(socket)) return;
  lingering.add(socket);
  if (o.answer !== undefined) socket.end(o.answer);
  else if (!socket.writableEnded) socket.end();
  if (socket.destroyed) return;
  let read = 0;
  const bytesRead = o.readElsewhere ?? (() => read);
  const start = bytesRead();
  let seen = start;
  let lastRead = Date.now();
  const stop = () => {
    clearTimeout(total);
    clearInterval(check);
    socket.off("data", onData);
    socket.destroy();
  };
  const total = setTimeout(stop, limits.totalMs);
  // One timer for quiet and bytes alike.
  const check = setInterval(() => {
    const now = bytesRead();
    if (now !== seen) {
      seen = now;
      lastRead = Date.now();
    }
    if (now - start > limits.maxBytes || Date.now() - lastRead >= limits.quietMs) stop();
  }, Math.min(CHECK_MS, limits.quietMs));
  total.unref();
  check.unref();
  const onData = (chunk: Buffer) => {
    read += chunk.length;
    if (read > limits.maxBytes || o.done?.(chunk)) stop();
  };
  if (!o.readElsewhere) {
    socket.on("data", onData);
    socket.resume();
  }
  socket.once("end", stop);
  socket.once("error", stop);
  socket.once("close", stop);
}

/** node's HTTP server (and Deno's port of it) calls destroySoon after an answer that says
 * `connection: close`, which destroys the socket as soon as the answer is written, unread
 * body and all: make it linger instead, node's parser reading (and the resumed request
 * dropping) what still comes. */
export function lingerAfterLastAnswer(socket: net.Socket, limits: Linger): void {
  socket.destroySoon = () => lingeringClose(socket, limits, { readElsewhere: () => socket.bytesRead });
}

/** A plain-text answer written straight to a socket, the last on it (`connection: close`):
 * what lingeringClose's `answer` is, for the firewall's own refusals and for what node's
 * parser could not take alike. `headers`: extra header lines, each ending in CRLF. */
export function closingAnswer(status: number, body: string, headers = ""): string {
  return `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n${headers}connection: close\r\n\r\n${body}`;
}
