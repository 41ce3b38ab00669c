// Text that came from inside a bottle (an agent's reason, a pushed path, a ref name) and is
// shown on an operator's terminal or in a log they read there: control characters (C0,
// DEL, C1 such as CSI and NEL), format characters (bidi overrides, zero-width) and line
// separators are written as visible escapes, so the text cannot redraw the screen or make
// one thing read like another. Everything else, non-ASCII letters included, stays.

// Cc: C0, DEL, C1; Cf: bidi overrides and isolates, zero-width characters.
export const UNSAFE = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;

export const hex = (code: number, width: number) => code.toString(16).padStart(width, "0");

function escape(c: string): string {
  const code = c.codePointAt(0)!;
  return code <= 0xff ? `\\x${hex(code, 2)}` : code <= 0xffff ? `\\u${hex(code, 4)}` : `\\u{${hex(code, 1)}}`;
}

/** The text with each unsafe character written as an escape (\x1b, \u202e). */
export function printable(text: string): string {
  return text.replace(UNSAFE, escape);
}

/** printable(), keeping line breaks and tabs: for a whole log message, some of ours span lines. */
export function printableLines(text: string): string {
  return text.replace(UNSAFE, (c) => (c === "\n" || c === "\t" ? c : escape(c)));
}
