// What `bb-supervise list` prints: a table for people, JSON for scripts. Reasons and
// questions are the agent's text, so neither form lets a control, C1 or bidi character
// reach the operator's terminal raw (an escape sequence could redraw the screen or make
// a request read like another one).
import { DRAWS_NOTHING, fitColumns, hex, printable } from "../../lib/printable.ts";
import { asked, grantedHost, statusText, type QueueRequest } from "../../lib/supervise/queue.ts";

// What JSON.stringify leaves raw inside strings (it escapes C0 itself; the only raw C0
// left is the layout's own newlines), and what printable() escapes besides.
const UNSAFE_IN_JSON = new RegExp(String.raw`[\u007f-\u009f\p{Cf}\u2028\u2029]|${DRAWS_NOTHING}`, "gu");

// What approving grants is never cut: the whole host (253 characters at most) and the
// passthrough flag come first (asked()); only the agent's reason is shortened.
function what(r: QueueRequest): string {
  if (r.kind === "host") return r.reason ? `${asked(r)}: ${oneLine(r.reason)}` : asked(r);
  return oneLine(r.question ?? "");
}

// Cut by terminal columns, not string length: a reason in CJK or emoji takes two columns
// a character, and must not wrap the row. Combining marks take none, so past two on one
// letter (no script needs more) they go: the cut would not bound them, and a letter with
// hundreds stacked on it is drawn over the rows above and below in many terminals.
function oneLine(text: string, max = 100): string {
  return fitColumns(printable(text.replace(/\s+/g, " ").trim()).replace(/(\p{M}{2})\p{M}+/gu, "$1"), max);
}

export function formatTable(requests: QueueRequest[]): string {
  if (requests.length === 0) return "no requests\n";
  const rows = [
    ["ID", "KIND", "STATUS", "CREATED", "REQUEST"],
    // createdAt passed the queue schema's datetime check; printable() all the same, as the
    // file it came from may have been written inside the bundle.
    ...requests.map((r) => [r.id, r.kind, statusText(r), shownTime(r.createdAt), what(r)]),
  ];
  return aligned(rows);
}

/** A time stamp from a file the bundle may write, to the second, made printable. */
export const shownTime = (iso: string) => printable(iso.replace("T", " ").replace(/\.\d+Z$/, "Z"));

/** Rows of cells in columns two spaces apart; the last column is not padded. */
export function aligned(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join("\n") + "\n";
}

/** JSON for stdout, with the unsafe characters JSON.stringify leaves raw as \u escapes. */
export function safeJson(value: unknown): string {
  const text = JSON.stringify(value, null, 2).replace(UNSAFE_IN_JSON, (c) =>
    [...Array(c.length).keys()].map((i) => `\\u${hex(c.charCodeAt(i), 4)}`).join(""),
  );
  return `${text}\n`;
}

/** The requests as JSON; the unsafe characters JSON.stringify leaves raw become \u escapes.
 * The status is the table's (statusText): an answered question is "answered" here too,
 * though its file says "approved", which is what the bundle's daemon reads. The host is
 * the one approve grants (asked()), not the file's spelling of it. */
export function formatJson(requests: QueueRequest[]): string {
  return safeJson(requests.map((r) => ({ ...r, host: grantedHost(r), status: statusText(r) })));
}
