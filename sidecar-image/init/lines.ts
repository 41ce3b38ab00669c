// Line-buffered name prefixes for daemon output. A chunk from a pipe can end anywhere,
// so the tail of a chunk waits for its newline, and each write hands on whole lines
// only: lines from different daemons never interleave mid-line in `docker logs`.

import { printableLines } from "../../lib/printable.ts";

/** A line longer than this is cut so a daemon that never writes "\n" cannot grow memory. */
const MAX_LINE = 16 * 1024;

interface LinePrefixer {
  push(text: string): void;
  /** Emit a trailing partial line (the stream ended without "\n"). */
  flush(): void;
}

export function createLinePrefixer(name: string, write: (text: string) => void): LinePrefixer {
  const prefix = `${name} | `;
  // The pieces after a cut are marked: what follows a cut is often a client's text (a
  // header the firewall quotes), and must not read as a line of the daemon's own (a
  // forged "firewall | firewall: policy reloaded").
  const more = `${name} +| `;
  let partial = "";
  /** The line in `partial` had a piece written already. */
  let cut = false;
  // A carriage return or escape sequence could redraw the prefix on a terminal.
  const line = (text: string) => `${cut ? more : prefix}${printableLines(text)}\n`;
  return {
    push(text) {
      const parts = (partial + text).split("\n");
      partial = parts.pop()!;
      let out = "";
      for (const l of parts) {
        out += line(l);
        cut = false;
      }
      while (partial.length > MAX_LINE) {
        out += line(partial.slice(0, MAX_LINE));
        cut = true;
        partial = partial.slice(MAX_LINE);
      }
      if (out) write(out);
    },
    flush() {
      if (partial) write(line(partial));
      partial = "";
      cut = false;
    },
  };
}
