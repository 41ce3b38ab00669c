// Base64 wrapped across lines, outside any MIME part: `base64` writes 76 columns, `openssl
// base64` and PEM 64, GitHub's contents API answers (and takes) 60, and a JSON body carries
// the breaks as "\n" escapes. A decoder skips the breaks (node's Buffer, Ruby's decode64,
// Python's b64decode), so a key that straddles one is read whole by the server, while no
// single line holds it for the scanner. The lines are joined and decoded here.
import { Buffer } from "node:buffer";
import { printableByte } from "./blocks.ts";

/** Shortest line width taken for wrapping (narrower runs are ordinary short lines). */
const MIN_WIDTH = 16;

// The breaks as a JSON string spells them.
const ESCAPED_BREAK = /\\r\\n|\\n/g;

const DIGIT = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") DIGIT[c.charCodeAt(0)] = 1;
const isDigit = (c: number) => c < 128 && DIGIT[c] === 1;

export interface WrappedBlock {
  /** The block decoded, as latin1. */
  decoded: string;
  /** Whether it decodes to text (NULs allowed: UTF-16), which deserves the whole scan;
   * binary (a certificate, an image) is read for known formats and sensitive values. */
  text: boolean;
}

/** Text as base64Text (scanner.ts) judges it: at most ~5% of bytes neither printable nor NUL. */
function looksLikeText(b: Buffer): boolean {
  let bad = 0;
  for (const c of b) if (c !== 0 && !printableByte(c) && ++bad > 2 + b.length / 20) return false;
  return true;
}

/**
 * Each wrapped base64 block in `text`, decoded: the run of base64 digits that ends a line,
 * the whole lines after it (all one width, a multiple of 4, no narrower than that first
 * run), and the run (with its padding) that starts the line after them, no wider. One walk
 * over the lines, each character looked at a bounded number of times.
 */
export function wrappedBase64(text: string): WrappedBlock[] {
  const escaped = text.includes("\\n");
  if (!escaped && !text.includes("\n")) return [];
  const src = escaped ? text.replace(ESCAPED_BREAK, "\n") : text;
  /** End of the line starting at `from` (before its "\r\n" or "\n"), and where the next begins. */
  const lineAt = (from: number) => {
    const nl = src.indexOf("\n", from);
    const stop = nl === -1 ? src.length : nl;
    return { end: stop > from && src.charCodeAt(stop - 1) === 13 ? stop - 1 : stop, next: nl === -1 ? -1 : nl + 1 };
  };
  const out: WrappedBlock[] = [];
  let from = 0;
  while (from !== -1) {
    const line = lineAt(from);
    if (line.next === -1) break;
    let start = line.end;
    while (start > from && isDigit(src.charCodeAt(start - 1))) start--;
    const first = line.end - start;
    from = line.next;
    if (first < MIN_WIDTH) continue;
    const pieces = [src.slice(start, line.end)];
    let width = 0;
    let last = 0;
    while (from !== -1) {
      const row = lineAt(from);
      let head = from;
      while (head < row.end && isDigit(src.charCodeAt(head))) head++;
      const run = head - from;
      if (run > 0 && head === row.end && row.next !== -1 && (width === 0 || run === width)) {
        width = run;
        pieces.push(src.slice(from, head));
        from = row.next;
        continue;
      }
      // The block's last line; it may end with the next block's first run, so it is read again.
      let end = head;
      while (end < row.end && end - head < 2 && src.charCodeAt(end) === 61) end++; // "=" padding
      if (run > 0) pieces.push(src.slice(from, end));
      last = run;
      break;
    }
    if (pieces.length < 2) continue;
    // Only one whole line after the first run: it may be the last, narrower one.
    const onlyOne = pieces.length === 2 && last === 0;
    const w = width === 0 || onlyOne ? first : width;
    if (w < MIN_WIDTH || w % 4 !== 0 || first > w || last > w || (onlyOne && width > w)) continue;
    const bytes = Buffer.from(pieces.join(""), "base64");
    out.push({ decoded: bytes.toString("latin1"), text: looksLikeText(bytes) });
  }
  return out;
}
