// Base64 wrapped across lines, outside any MIME part: `base64` writes 76 columns, `openssl
// base64` and PEM 64, GitHub's contents API answers (and takes) 60, and a JSON body carries
// the breaks as "\n" escapes. A decoder skips the breaks (node's Buffer, Ruby's decode64,
// Python's b64decode), and any other white space with them, so a key that straddles one
// is read whole by the server, while no single line holds it for the scanner. The rows are
// joined and decoded here, whichever alphabet they use (base64url's "-" and "_" too),
// whatever white space stands for the breaks (spaces where a tool flattened the lines,
// indentation in YAML), and when the first row is shorter than the rest (the encoder
// counted a label into its columns).
import { Buffer } from "node:buffer";

/** Shortest row width taken for wrapping (narrower runs are ordinary short lines). */
const MIN_WIDTH = 16;

const DIGIT = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_") DIGIT[c.charCodeAt(0)] = 1;
const isDigit = (c: number) => c < 128 && DIGIT[c] === 1;

interface WrappedBlock {
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
  /** Some break is white space on one line (no line feed): rows of a wrapped image are
   * rarely flattened so, while a list of random tokens often is. */
  flat: boolean;
}

/** Printable ASCII, tab, CR or LF: what text is made of (blocks.ts and scanner.ts read base64 by it too). */
export const printableByte = (b: number) => (b >= 32 && b < 127) || b === 9 || b === 10 || b === 13;

/** Text as base64Text (scanner.ts) judges it: at most ~5% of bytes neither printable nor NUL. */
function looksLikeText(b: Buffer): boolean {
  let bad = 0;
  const most = 2 + b.length / 20;
  for (let i = 0; i < b.length; i++) if (b[i] !== 0 && !printableByte(b[i]!) && ++bad > most) return false;
  return true;
}

const HEX = /^(?:[0-9A-Fa-f]{2})+$/;

/** Whether the break breakEnd() read last held a line feed (LF or a "\n" escape). */
let brokeLine = false;

/** End of the break that starts at `i`: white space and the JSON escapes "\n", "\r", "\t";
 * `i` itself when none starts there. */
function breakEnd(text: string, i: number): number {
  brokeLine = false;
  let j = i;
  for (;;) {
    const c = text.charCodeAt(j);
    if (c === 32 || c === 9 || c === 13) j++;
    else if (c === 10) {
      brokeLine = true;
      j++;
    } else if (c === 92) {
      const e = text.charCodeAt(j + 1);
      if (e !== 110 && e !== 114 && e !== 116) return j;
      if (e === 110) brokeLine = true;
      j += 2;
    } else return j;
  }
}

/**
 * Where the lines of `text` start and end, cut at each break (as breakEnd reads one) that
 * holds a line feed, real or a "\n" escape: PEM armour put into a JSON string is still
 * read line by line (blocks.ts), its header and checksum lines told from its base64. An
 * escaped backslash ("\\n") is no break, as to a JSON parser.
 */
export function lines(text: string): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  let from = 0;
  for (let i = 0; i < text.length; ) {
    const end = breakEnd(text, i);
    if (end === i) i += text.charCodeAt(i) === 92 ? 2 : 1;
    else {
      if (brokeLine) {
        out.push({ start: from, end: i });
        from = end;
      }
      i = end;
    }
  }
  out.push({ start: from, end: text.length });
  return out;
}

const runEnd = (text: string, i: number) => {
  while (i < text.length && isDigit(text.charCodeAt(i))) i++;
  return i;
};

/** Start of the break that ends at `i` (white space, "\n", "\r", "\t" escapes), read
 * backwards; `i` itself when none ends there. */
function breakStart(text: string, i: number): number {
  brokeLine = false;
  for (;;) {
    const c = text.charCodeAt(i - 1);
    if (c === 32 || c === 9 || c === 13) i--;
    else if (c === 10) {
      brokeLine = true;
      i--;
    } else if ((c === 110 || c === 114 || c === 116) && text.charCodeAt(i - 2) === 92) {
      if (c === 110) brokeLine = true;
      i -= 2;
    } else return i;
  }
}

/**
 * Each wrapped base64 (or hex) block in `text`, decoded: a run of base64 digits followed by
 * a break, the whole rows after it (all one width, a multiple of 4, at least 16, no
 * narrower than that first run), and the run (with its padding) that starts the row after
 * them, no wider. A first run narrower than 16 may be a label's last word as well as data,
 * so such a block is read both with it and without it. One walk over the text: a block
 * has a run of 16 or more, and only those are looked at further.
 */
export function wrappedBase64(text: string): WrappedBlock[] {
  const out: WrappedBlock[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (!isDigit(c)) {
      i += c === 92 ? 2 : 1; // an escape's letter ("\n") starts no run
      continue;
    }
    const start = i;
    i = runEnd(text, i);
    const len = i - start;
    if (len < MIN_WIDTH) continue;
    const after = breakEnd(text, i);
    // Where a break is white space on one line, only the usual widths count (judge): most
    // long words in prose are let go here, before any row is read.
    const lineAfter = brokeLine || after === i;
    const usual = WRAP_WIDTHS.has(len);
    // A short run before it, across a break, may be the block's first row.
    const gap = breakStart(text, start);
    let shortStart = gap;
    while (shortStart > 0 && gap - shortStart < MIN_WIDTH && isDigit(text.charCodeAt(shortStart - 1))) shortStart--;
    const short = gap < start && shortStart < gap && gap - shortStart < MIN_WIDTH && !isDigit(text.charCodeAt(shortStart - 1));
    if (short && (usual || (brokeLine && lineAfter))) read(text, shortStart, gap, start, out);
    if (after === i) continue;
    const next = runEnd(text, after) - after;
    if (lineAfter || usual || WRAP_WIDTHS.has(next)) i = read(text, start, i, breakEnd(text, i), out);
  }
  return out;
}

/**
 * Read the block whose first run is text[s, e) and whose rows start at `row` (after the
 * break that follows the first run, whose kind breakEnd or breakStart left in brokeLine);
 * push it to `out` if it has the shape of wrapping. Returns where its last row starts: that
 * row may hold the next block's first run, so it is read again.
 */
function read(text: string, s: number, e: number, row: number, out: WrappedBlock[]): number {
  const n = text.length;
  const pieces = [text.slice(s, e)];
  let flat = !brokeLine;
  let width = 0;
  let last = 0;
  let blockEnd = e;
  let h = runEnd(text, row);
  for (;;) {
    const run = h - row;
    const rowLine = brokeLine;
    const next = run >= MIN_WIDTH && (width === 0 || run === width) ? breakEnd(text, h) : h;
    if (next !== h) {
      width = run;
      pieces.push(text.slice(row, h));
      flat ||= !rowLine;
      blockEnd = h;
      row = next;
      h = runEnd(text, row);
      continue;
    }
    let end = h;
    while (end < n && end - h < 2 && text.charCodeAt(end) === 61) end++; // "=" padding
    if (run > 0) {
      pieces.push(text.slice(row, end));
      flat ||= !rowLine;
      blockEnd = end;
    }
    last = run;
    break;
  }
  const block = judge(pieces, e - s, width, last, flat);
  if (block) out.push({ start: s, end: blockEnd, ...block, flat });
  return row;
}

/** The widths tools wrap at (MIME and `base64`, PEM and `openssl base64`, GitHub): the only
 * ones taken where the breaks are spaces, since prose has long words side by side. */
const WRAP_WIDTHS = new Set([60, 64, 76]);

/** The rows decoded, or null when they do not have the shape of wrapping. */
function judge(pieces: string[], first: number, width: number, last: number, flat: boolean): Omit<WrappedBlock, "start" | "end" | "flat"> | null {
  if (pieces.length < 2) return null;
  // Only one whole row after the first run: it may be the last, narrower one.
  const onlyOne = pieces.length === 2 && last === 0;
  // A short first row and the last one only (a line break between): nothing shows the width.
  const twoRows = first < MIN_WIDTH && width === 0 && last >= MIN_WIDTH && !flat;
  const w = first < MIN_WIDTH || (width !== 0 && !onlyOne) ? width : first;
  if (!twoRows && (w < MIN_WIDTH || w % 4 !== 0 || first > w || last > w || (onlyOne && width > w) || (flat && !WRAP_WIDTHS.has(w)))) return null;
  const joined = pieces.join("");
  const hex = HEX.test(joined);
  const bytes = Buffer.from(joined, hex ? "hex" : "base64");
  return { decoded: bytes.toString("latin1"), text: looksLikeText(bytes), hex };
}
