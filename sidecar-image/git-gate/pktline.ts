// The first message of the git:// protocol (pkt-line framed, see gitprotocol-pack(5)):
//   "<service> <path>\0host=<host>\0[\0<extra>\0...]"
// and the ERR packet a server answers instead of a ref advertisement to refuse.
import { Buffer } from "node:buffer";
import type { Socket } from "node:net";

const MAX_PKT = 65520;

export interface GitRequest {
  service: string;
  path: string;
  host: string | null;
  /** Extra parameters ("version=2"), the value of GIT_PROTOCOL joined by ":". */
  extra: string[];
}

/** One pkt-line: 4 hex digits of total length, then the payload. */
export function pkt(payload: string): Buffer {
  const body = Buffer.from(payload, "utf8");
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, "0"), "ascii"), body]);
}

/** The packet git clients print as "fatal: remote error: <message>". */
export function errPkt(message: string): Buffer {
  return pkt(`ERR ${message}\n`);
}

/**
 * Read the first pkt-line from `socket`; resolves with its payload and whatever bytes
 * came after it. The socket is left paused with no data listener.
 */
export function readFirstPkt(socket: Socket, timeoutMs: number): Promise<{ payload: Buffer; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const finish = (err: Error | null, value?: { payload: Buffer; rest: Buffer }) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.pause();
      if (err) reject(err);
      else resolve(value!);
    };
    const onEnd = () => finish(new Error("connection closed before the request line"));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 4) return;
      const len = Number.parseInt(buf.subarray(0, 4).toString("ascii"), 16);
      if (!/^[0-9a-fA-F]{4}$/.test(buf.subarray(0, 4).toString("ascii")) || len < 5 || len > MAX_PKT) {
        finish(new Error("not a git protocol request (bad pkt-line length)"));
        return;
      }
      if (buf.length >= len) finish(null, { payload: buf.subarray(4, len), rest: buf.subarray(len) });
    };
    const timer = setTimeout(() => finish(new Error(`no request line within ${timeoutMs}ms`)), timeoutMs);
    socket.on("data", onData);
    socket.on("end", onEnd);
  });
}

/** Parse the request payload; null when it is not "<service> <path>\0...". */
export function parseRequest(payload: Buffer): GitRequest | null {
  const text = payload.toString("utf8");
  const m = /^(git-[a-z-]+) ([^\0]+)\0/.exec(text);
  if (!m) return null;
  const fields = text.slice(m[0].length).split("\0");
  let host: string | null = null;
  const extra: string[] = [];
  // host=... comes first; extra parameters follow an empty field.
  let afterEmpty = false;
  for (const f of fields) {
    if (f === "") afterEmpty = true;
    else if (!afterEmpty && f.startsWith("host=")) host = f.slice(5);
    else if (afterEmpty && /^[A-Za-z0-9-]+=[A-Za-z0-9._-]*$/.test(f)) extra.push(f);
  }
  return { service: m[1]!, path: m[2]!.replace(/\n$/, ""), host, extra };
}
