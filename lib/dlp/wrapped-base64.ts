// Base64 wrapped across lines, outside any MIME part: `base64` writes 76 columns, `openssl
// base64` and PEM 64, GitHub's contents API answers (and takes) 60, and a JSON body carries
// the breaks as "\n" escapes. A decoder skips the breaks (node's Buffer, Ruby's decode64,
// Python's b64decode), so a key that straddles one is read whole by the server, while no
// single line holds it for the scanner. The lines are joined and decoded here.
import { Buffer } from "node:buffer";
import { printableByte } from "./blocks.ts";

/** Shortest line width taken for wrapping (narrower runs are ordinary short lines). */
const MIN_WIDTH = 16;

const DIGIT = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") DIGIT[c.charCodeAt(0)] = 1;
const isDigit = (c: number) => c < 128 && DIGIT[c] === 1;

export interface WrappedBlock {
  /** Where the block starts and ends in the text searched (its first run to its last). */
  start: number;
  end: number;
  /** The block decoded, as latin1. */
  decoded: string;
  /** Whether it decodes to text (NULs allowed: UTF-16), which deserves the whole scan;
   * binary (a certificate, an image) is read for known formats and sensitive values. */
  text: boolean;
  /** Hex digits only: a hex dump (`xxd -p` writes 60 columns), decoded as hex. */
  hex: boolean;
}

/** Text as base64Text (scanner.ts) judges it: at most ~5% of bytes neither printable nor NUL. */
function looksLikeText(b: Buffer): boolean {
  let bad = 0;
  const most = 2 + b.length / 20;
  for (let i = 0; i < b.length; i++) if (b[i] !== 0 && !printableByte(b[i]!) && ++bad > most) return false;
  return true;
}

const HEX = /^(?:[0-9A-Fa-f]{2})+$/;

/**
 * Each wrapped base64 (or hex) block in `text`, decoded: the run of base64 digits that
 * ends a line, the whole lines after it (all one width, a multiple of 4, no narrower than
 * that first run), and the run (with its padding) that starts the line after them, no
 * wider. Breaks are LF, CRLF, or those spelled as JSON escapes ("\n", "\r\n"). One walk
 * over the lines, each character looked at a bounded number of times.
 */
export function wrappedBase64(text: string): WrappedBlock[] {
  const escaped = text.includes("\\n");
  if (!escaped && !text.includes("\n")) return [];
  // The next LF and the next "\n" escape at or after a position; positions only grow.
  let lf = -2;
  let esc = escaped ? -2 : -1;
  /** End of the line starting at `from` (before its break), and where the next one begins (-1: none). */
  const lineAt = (from: number) => {
    if (lf !== -1 && lf < from) lf = text.indexOf("\n", from);
    if (esc !== -1 && esc < from) esc = text.indexOf("\\n", from);
    const isEsc = esc !== -1 && (lf === -1 || esc < lf);
    const at = isEsc ? esc : lf;
    if (at === -1) return { end: text.length, next: -1 };
    const cr = isEsc ? (text.startsWith("\\r", at - 2) ? 2 : 0) : text.charCodeAt(at - 1) === 13 ? 1 : 0;
    return { end: Math.max(from, at - cr), next: at + (isEsc ? 2 : 1) };
  };
  const out: WrappedBlock[] = [];
  let from = 0;
  while (from !== -1) {
    const line = lineAt(from);
    if (line.next === -1) break;
    let start = line.end;
    while (start > from && isDigit(text.charCodeAt(start - 1))) start--;
    const first = line.end - start;
    from = line.next;
    if (first < MIN_WIDTH) continue;
    const pieces = [text.slice(start, line.end)];
    let width = 0;
    let last = 0;
    let blockEnd = line.end;
    while (from !== -1) {
      const row = lineAt(from);
      let head = from;
      while (head < row.end && isDigit(text.charCodeAt(head))) head++;
      const run = head - from;
      if (run > 0 && head === row.end && row.next !== -1 && (width === 0 || run === width)) {
        width = run;
        pieces.push(text.slice(from, head));
        blockEnd = head;
        from = row.next;
        continue;
      }
      // The block's last line; it may end with the next block's first run, so it is read again.
      let end = head;
      while (end < row.end && end - head < 2 && text.charCodeAt(end) === 61) end++; // "=" padding
      if (run > 0) {
        pieces.push(text.slice(from, end));
        blockEnd = end;
      }
      last = run;
      break;
    }
    if (pieces.length < 2) continue;
    // Only one whole line after the first run: it may be the last, narrower one.
    const onlyOne = pieces.length === 2 && last === 0;
    const w = width === 0 || onlyOne ? first : width;
    if (w < MIN_WIDTH || w % 4 !== 0 || first > w || last > w || (onlyOne && width > w)) continue;
    const joined = pieces.join("");
    const hex = HEX.test(joined);
    const bytes = Buffer.from(joined, hex ? "hex" : "base64");
    out.push({ start, end: blockEnd, decoded: bytes.toString("latin1"), text: looksLikeText(bytes), hex });
  }
  return out;
}
