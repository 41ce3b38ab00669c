// The head of an HTTP/1.1 response, parsed by hand where a proxy reads answers itself
// instead of through node's http client (lib/http/hop-client.ts): that client copies every
// body chunk its parser hands up, the largest cost of relaying a big answer. The head
// comes from a peer that is not trusted, so it is read strictly: CRLF line ends, a
// three-digit status, header names that are tokens, values without control bytes, no
// obsolete line folding, and at most MAX_HEADER_BYTES of it.
import type { Buffer } from "node:buffer";
import { MAX_HEADER_BYTES } from "./limits.ts";

export interface ResponseHead {
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: 0 | 1;
  status: number;
  /** Flat [name, value, name, value, ...] as sent (names keep their case). */
  rawHeaders: string[];
}

type HeadRead =
  | { kind: "need" }
  /** `reason` is what was sent, article and all: "PEER sent REASON" is a sentence. */
  | { kind: "bad"; reason: string }
  | { kind: "head"; head: ResponseHead; /** bytes the head took, its blank line included */ length: number };

const HEAD_END = "\r\n\r\n";
/** The characters of a token (a method, a header name) and of a field value: no control
 * byte but tab. The hop client holds what it sends to the same rule (hop-client.ts). */
const TCHAR = "!#$%&'*+\\-.^_`|~0-9A-Za-z";
const FIELD_CHAR = "\\t\\x20-\\x7e\\x80-\\xff";
export const TOKEN = new RegExp(`^[${TCHAR}]+$`);
export const FIELD_VALUE = new RegExp(`^[${FIELD_CHAR}]*$`);
// Any three digits, as node's own parser takes them: what a status may be relayed as is the
// relaying proxy's call (lib/http/status.ts), and its refusal names the status.
const STATUS_LINE = new RegExp(`^HTTP/1\\.([01]) (\\d\\d\\d)(?: [${FIELD_CHAR}]*)?$`);
const HEADER_LINE = new RegExp(`^([${TCHAR}]+):[\\t ]*([${FIELD_CHAR}]*?)[\\t ]*$`);

/** The head at the start of `buf`, if it is all there. */
export function readResponseHead(buf: Buffer, max = MAX_HEADER_BYTES): HeadRead {
  const end = buf.indexOf(HEAD_END, 0, "latin1");
  if (end === -1 || end + 4 > max) {
    return end === -1 && buf.length < max ? { kind: "need" } : { kind: "bad", reason: `a response head larger than ${max} bytes` };
  }
  // latin1: one character a byte, so the patterns see every byte as it came.
  const lines = buf.toString("latin1", 0, end).split("\r\n");
  const status = STATUS_LINE.exec(lines[0]!);
  if (!status) return { kind: "bad", reason: `a malformed status line ${JSON.stringify(lines[0]!.slice(0, 100))}` };
  const rawHeaders: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const m = HEADER_LINE.exec(lines[i]!);
    if (!m) return { kind: "bad", reason: `a malformed header line ${JSON.stringify(lines[i]!.slice(0, 100))}` };
    rawHeaders.push(m[1]!, m[2]!);
  }
  return { kind: "head", head: { minor: status[1] === "1" ? 1 : 0, status: Number(status[2]), rawHeaders }, length: end + 4 };
}

/** Every value of a header (name compared without case), in order. */
export function headerValues(rawHeaders: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) out.push(rawHeaders[i + 1]!);
  return out;
}
