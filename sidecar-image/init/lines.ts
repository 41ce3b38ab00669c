// Line-buffered name prefixes for daemon output. A chunk from a pipe can end anywhere,
// so the tail of a chunk waits for its newline, and each write hands on whole lines
// only: lines from different daemons never interleave mid-line in `docker logs`.

/** A line longer than this is cut so a daemon that never writes "\n" cannot grow memory. */
const MAX_LINE = 16 * 1024;

export interface LinePrefixer {
  push(text: string): void;
  /** Emit a trailing partial line (the stream ended without "\n"). */
  flush(): void;
}

export function createLinePrefixer(name: string, write: (text: string) => void): LinePrefixer {
  const prefix = `${name} | `;
  let partial = "";
  return {
    push(text) {
      const parts = (partial + text).split("\n");
      partial = parts.pop()!;
      while (partial.length > MAX_LINE) {
        parts.push(partial.slice(0, MAX_LINE));
        partial = partial.slice(MAX_LINE);
      }
      if (parts.length) write(parts.map((l) => `${prefix}${l}\n`).join(""));
    },
    flush() {
      if (partial) write(`${prefix}${partial}\n`);
      partial = "";
    },
  };
}
