// Text that came from inside a bottle (an agent's reason, a pushed path, a ref name) and is
// shown on an operator's terminal or in a log they read there: control characters (C0,
// DEL, C1 such as CSI and NEL), format characters (bidi overrides, zero-width) and line
// separators are written as visible escapes, so the text cannot redraw the screen or make
// one thing read like another. Everything else, non-ASCII letters included, stays.

// Cc: C0, DEL, C1; Cf: bidi overrides and isolates, zero-width characters. Default
// ignorables that are letters or marks (Hangul fillers U+115F, U+1160, U+3164, U+FFA0,
// the combining grapheme joiner U+034F) draw nothing either, so text can hide in them or
// line up as if it were something else; variation selectors stay (an emoji's style).
export const DRAWS_NOTHING = String.raw`(?![\ufe00-\ufe0f\u{e0100}-\u{e01ef}])\p{Default_Ignorable_Code_Point}`;
const UNSAFE = new RegExp(String.raw`[\p{Cc}\p{Cf}\u2028\u2029]|${DRAWS_NOTHING}`, "gu");

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

// East Asian Wide and Fullwidth characters and emoji shown as such take two terminal
// columns; combining marks and variation selectors none (wcwidth's ranges, approximately).
const WIDE = /[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{1f300}-\u{1f64f}\u{1f900}-\u{1f9ff}\u{20000}-\u{3fffd}]|\p{Emoji_Presentation}/u;
const ZERO_WIDTH = /[\p{M}\u200b\ufe00-\ufe0f]/u;

/** The terminal columns one character (code point) takes. */
export function columnsOf(c: string): number {
  return ZERO_WIDTH.test(c) ? 0 : WIDE.test(c) ? 2 : 1;
}

/** `text` cut to at most `max` terminal columns, ending in "…" when cut; never splits a
 * character (a surrogate pair, or a wide character across the limit). */
export function fitColumns(text: string, max: number): string {
  const chars = [...text];
  if (chars.reduce((n, c) => n + columnsOf(c), 0) <= max) return text;
  let out = "";
  let used = 0;
  for (const c of chars) {
    if (used + columnsOf(c) > max - 1) break; // one column for the ellipsis
    used += columnsOf(c);
    out += c;
  }
  return `${out}…`;
}
