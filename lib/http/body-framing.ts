// Where a response's body ends (RFC 9112 6.3), for a proxy that reads answers itself
// (lib/http/hop-client.ts). Anything ambiguous is refused rather than guessed, as node's
// own parser does: Content-Length and Transfer-Encoding together (the classic smuggling
// pair), more than one Content-Length, a Transfer-Encoding other than plain "chunked",
// and in chunked bodies a size that is not hex, too large, or a line or trailer section
// with no end in sight.
import { Buffer } from "node:buffer";
import { MAX_HEADER_BYTES } from "./limits.ts";
import { headerValues, type ResponseHead } from "./response-head.ts";

export type Framing =
  | { kind: "none" }
  | { kind: "length"; bytes: number }
  | { kind: "chunked" }
  /** Read until the peer closes; the connection cannot be used again. */
  | { kind: "close" }
  /** `reason` is what was sent, article and all, as response-head.ts's. */
  | { kind: "bad"; reason: string };

/** An informational (1xx) head: another head follows it. */
export function informational(status: number): boolean {
  return status >= 100 && status < 200;
}

/**
 * How the body of `head`, the answer to a `method` request, is framed. A Transfer-Encoding
 * other than plain "chunked" is refused, by egress and the firewall alike: neither can
 * relay it as sent. "gzip" alone runs to the close (RFC 9112 6.3 rule 4), and node's
 * server, relaying it under that header on a keep-alive connection, marks no end at all;
 * "gzip, chunked" with the chunking taken off leaves a coding the agent's client (and the
 * firewall, which frames answers anew) does not undo. Egress passed both for hosts it had
 * no credential for, and the firewall, its one client, refused them anyway, naming egress.
 */
export function framingOf(method: string, head: ResponseHead): Framing {
  const te = headerValues(head.rawHeaders, "transfer-encoding");
  const cl = headerValues(head.rawHeaders, "content-length");
  // No body whatever the headers say (RFC 9112 6.3 rule 1).
  if (method === "HEAD" || head.status === 204 || head.status === 304 || informational(head.status)) return { kind: "none" };
  if (te.length && cl.length) return { kind: "bad", reason: "an answer with both Transfer-Encoding and Content-Length" };
  if (te.length) {
    const list = te.flatMap((v) => v.split(",")).map((c) => c.trim().toLowerCase());
    if (list.length === 1 && list[0] === "chunked") return { kind: "chunked" };
    return { kind: "bad", reason: `an unsupported transfer-encoding ${JSON.stringify(te.join(", "))}` };
  }
  if (cl.length > 1) return { kind: "bad", reason: "an answer with more than one Content-Length" };
  if (cl.length) {
    const bytes = /^\d{1,15}$/.test(cl[0]!) ? Number(cl[0]) : Number.NaN;
    return Number.isSafeInteger(bytes) ? { kind: "length", bytes } : { kind: "bad", reason: `an invalid content-length ${JSON.stringify(cl[0]!.slice(0, 40))}` };
  }
  return { kind: "close" };
}

/** A chunk-size line (size and extensions) longer than this is refused. */
const MAX_SIZE_LINE = 4096;
const SIZE_LINE = /^([0-9A-Fa-f]{1,12})[\t ]*(?:;[\t\x20-\x7e\x80-\xff]*)?$/;

type State = "size" | "data" | "data-end" | "trailer" | "done";

type Decoded = { ok: true; data: Buffer[]; done: boolean; /** bytes after the body's end */ rest: Buffer } | { ok: false; reason: string };

/** Takes a chunked body apart as it streams in; the data comes out without framing. */
export class ChunkedDecoder {
  #state: State = "size";
  #left = 0; // data bytes still due in this chunk
  #line: Buffer = Buffer.alloc(0); // an unfinished size or trailer line
  #trailerBytes = 0;

  push(chunk: Buffer): Decoded {
    const data: Buffer[] = [];
    let at = 0;
    while (at < chunk.length && this.#state !== "done") {
      if (this.#state === "data") {
        const take = Math.min(this.#left, chunk.length - at);
        data.push(chunk.subarray(at, at + take));
        at += take;
        this.#left -= take;
        if (this.#left === 0) this.#state = "data-end";
        continue;
      }
      // Line states: gather up to the next CRLF.
      const nl = chunk.indexOf(10, at);
      const piece = chunk.subarray(at, nl === -1 ? chunk.length : nl + 1);
      at += piece.length;
      const limit = this.#state === "trailer" ? MAX_HEADER_BYTES - this.#trailerBytes : MAX_SIZE_LINE;
      if (this.#line.length + piece.length > limit) return { ok: false, reason: this.#state === "trailer" ? "chunked trailers too large" : "chunk size line too long" };
      this.#line = this.#line.length ? Buffer.concat([this.#line, piece]) : piece;
      if (nl === -1) {
        this.#line = Buffer.from(this.#line); // the socket's buffer is not ours to hold on to
        continue;
      }
      if (this.#line.length < 2 || this.#line[this.#line.length - 2] !== 13) return { ok: false, reason: "chunked framing line does not end in CRLF" };
      const line = this.#line.toString("latin1", 0, this.#line.length - 2);
      this.#line = Buffer.alloc(0);
      const failed = this.#line_(line);
      if (failed) return { ok: false, reason: failed };
    }
    return { ok: true, data, done: this.#state === "done", rest: chunk.subarray(at) };
  }

  /** One complete line in the current state; a reason when it is not valid there. */
  #line_(line: string): string | undefined {
    switch (this.#state) {
      case "data-end":
        if (line !== "") return "chunk data longer than its size";
        this.#state = "size";
        return;
      case "size": {
        const m = SIZE_LINE.exec(line);
        if (!m) return `invalid chunk size line ${JSON.stringify(line.slice(0, 40))}`;
        this.#left = parseInt(m[1]!, 16);
        this.#state = this.#left === 0 ? "trailer" : "data";
        return;
      }
      case "trailer":
        // Trailers are read past, not relayed: the answer's head is already on its way.
        if (line === "") this.#state = "done";
        else this.#trailerBytes += line.length + 2;
        return;
    }
  }
}
