// A tunnel's raw bytes: what protocol its first plain bytes start, reading them without
// taking them off the socket, and splicing two sockets together.
import { Buffer } from "node:buffer";
import type net from "node:net";
import { closeTogether } from "./websocket.ts";

const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;
const isSpace = (c: number | undefined) => c === 0x20 || c === 0x09;

/**
 * What a tunnel's first plain (not TLS) bytes start: "other" for a protocol that is
 * plainly not HTTP (binary, ssh's "SSH-2.0-" banner, a lone word on its line), "need"
 * until that shows, and "http" for everything else, so a request line a lenient server
 * would still take (after blank lines, with a tab) is never piped past the scan.
 */
export function plainProtocol(buf: Buffer): "http" | "other" | "need" {
  let i = 0;
  while (i < buf.length && (buf[i] === 0x0d || buf[i] === 0x0a || isSpace(buf[i]))) i++;
  if (i > 64) return "http";
  if (i === buf.length) return "need";
  if (!TOKEN_CHAR.test(String.fromCharCode(buf[i]!))) return "other";
  const start = i;
  while (i < buf.length && i - start <= 32 && TOKEN_CHAR.test(String.fromCharCode(buf[i]!))) i++;
  if (i - start > 32) return "http";
  if (i === buf.length) return "need";
  if (buf.subarray(start, start + 4).toString("latin1") === "SSH-") return "other";
  return isSpace(buf[i]) ? "http" : "other";
}

export function pipeBoth(a: net.Socket, b: net.Socket): void {
  closeTogether(a, b);
  a.pipe(b);
  b.pipe(a);
}

/**
 * The first bytes a client sends in a tunnel, read until `enough` says so and left unread
 * on the (paused) socket; null if it closes, or stays silent for `idleMs`, first.
 */
export function peek(socket: net.Socket, idleMs: number, enough: (buf: Buffer) => boolean = (b) => b.length > 0): Promise<Buffer | null> {
  socket.setTimeout(idleMs, () => socket.destroy());
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (!enough(buf)) return;
      cleanup();
      socket.pause();
      socket.unshift(buf);
      resolve(buf);
    };
    const onGone = () => {
      cleanup();
      resolve(null);
    };
    const cleanup = () => {
      socket.setTimeout(0);
      socket.off("data", onData);
      socket.off("end", onGone);
      socket.off("close", onGone);
    };
    socket.on("data", onData);
    socket.once("end", onGone);
    socket.once("close", onGone);
  });
}
