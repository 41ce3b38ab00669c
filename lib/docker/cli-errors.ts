// The docker CLI says why a `docker exec` could not start ("Error response from daemon: No
// such container: ...", "Cannot connect to the Docker daemon ...") on the same stderr as the
// command it runs, and only ever before the command has written anything: once it runs, a
// container removed or stopped under it ends the exec with 137 and no line of the CLI's own.
// So a stream that starts with such a line is held back until the caller knows whether the
// command ran (then it says why in its own words, or lets the line through); any other
// stream passes at once, byte for byte. The runtime's refusal to start the command (exit
// 126: no such program, no such folder to start in) comes the same way on the command's
// stdout instead (RUNTIME_LINE_STARTS), where a script reading the output would take it for
// the command's.
import type { Readable, Writable } from "node:stream";
import type { RunResult } from "../proc.ts";

const starts = (...lines: string[]) => lines.map((s) => Buffer.from(s));

const CLI_LINE_STARTS = starts("Error response from daemon: ", "Cannot connect to the Docker daemon", "error during connect: ");

/** runc's words as the docker CLI passes them on, in full: a command's own line that only
 * begins like it is its own. */
export const RUNTIME_LINE_STARTS = starts("OCI runtime exec failed: exec failed: ");

const SAID_BYTES = 4096;

/** Whether `bytes` (what the stream has said so far) may still be nothing but the CLI's own lines. */
export function mayBeCliLines(bytes: Buffer, lineStarts: Buffer[] = CLI_LINE_STARTS): boolean {
  let at = 0;
  while (at < bytes.length) {
    const end = bytes.indexOf(0x0a, at);
    const line = bytes.subarray(at, end < 0 ? bytes.length : end);
    // A line still being written may be the start of one of them.
    const fits = lineStarts.some((s) => (end < 0 && line.length < s.length ? s.subarray(0, line.length).equals(line) : line.subarray(0, s.length).equals(s)));
    if (!fits) return false;
    if (end < 0) break;
    at = end + 1;
  }
  return true;
}

export interface HeldCliErrors {
  /** The CLI's lines held back so far ("" when the stream was the command's). */
  text(): string;
  /** The start of all the stream said, held back or not (up to 4 KiB). */
  said(): string;
  /** Write what was held to the sink (it was the command's after all), or to `to`. */
  release(to?: Writable): void;
}

/** Read `source` to its end into `sink`, holding back a start that is the docker CLI's own
 * lines (`lineStarts`, by default those it writes on stderr). */
export function holdCliErrors(source: Readable, sink: Writable, lineStarts: Buffer[] = CLI_LINE_STARTS): HeldCliErrors {
  let held: Buffer | null = Buffer.alloc(0);
  let start = Buffer.alloc(0);
  source.on("data", (chunk: Buffer) => {
    if (start.length < SAID_BYTES) start = Buffer.concat([start, chunk.subarray(0, SAID_BYTES - start.length)]);
  });
  // A reader that went away (`bb-vm exec -- yes | head -1`): the writer hears of it, as it
  // would writing there itself, instead of this process failing on the write.
  sink.once("error", () => source.destroy());
  const onData = (chunk: Buffer) => {
    held = Buffer.concat([held!, chunk]);
    if (mayBeCliLines(held, lineStarts)) return;
    // The command's own: everything from here on goes straight through.
    source.off("data", onData);
    sink.write(held);
    held = null;
    source.pipe(sink, { end: false });
  };
  source.on("data", onData);
  return {
    text: () => (held === null ? "" : held.toString("utf8")),
    said: () => start.toString("utf8"),
    release: (to = sink) => {
      if (held?.length) to.write(held);
      held = null;
    },
  };
}

/** A captured exec's result with the runtime's refusal to start the command (exit 126 or
 * 127, said on the command's stdout) moved to the end of stderr, where a failure's message
 * is read from: it is why the command did not run, never what the command wrote. */
export function runtimeLineOff(r: RunResult): RunResult {
  const said = Buffer.from(r.stdout);
  const refusal = (r.code === 126 || r.code === 127) && said.length >= RUNTIME_LINE_STARTS[0]!.length && mayBeCliLines(said, RUNTIME_LINE_STARTS);
  return refusal ? { ...r, stdout: "", stderr: r.stderr + r.stdout } : r;
}
