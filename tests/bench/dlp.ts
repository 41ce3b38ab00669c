// `just bench dlp`: what the DLP scanner costs on what it scans most, an API request body
// of 1 MiB (the ordinary-traffic corpus, lib/dlp/testdata/negative.json, as the messages
// of one JSON body), against JSON.parse of the same body measured in the same run: the
// server it goes to parses it anyway, so the ratio is what scanning adds, whatever this
// machine's speed. Also text crafted to make the scanner backtrack (private key headers,
// each followed by a base64 run one short of a key body) against ordinary text of its
// size. Times are this process's CPU time, median of the runs, which other processes on
// the machine stretch far less than wall-clock time. It reports; no target is set (none
// was asked for), and lib/dlp/scanner.test.ts asserts only that the work grows in
// proportion to the input.
//
//   just bench dlp [--runs N] [--json]
import { readFileSync } from "node:fs";
import process from "node:process";
import { Command, writeStdout } from "../../lib/cli.ts";
import { createScanner, type Scanner } from "../../lib/dlp/scanner.ts";
import { BbError, exitTableText } from "../../lib/errors.ts";
import { runsFlag } from "./lib/flags.ts";
import { percentile } from "./lib/stats.ts";

export interface DlpRow {
  name: string;
  bytes: number;
  /** Median CPU ms of one scan. */
  scanMs: number;
  mibPerS: number;
  baseline: string;
  /** Median CPU ms of the baseline on the same run's input. */
  baselineMs: number;
  /** scanMs ÷ baselineMs. */
  x: number;
}

export interface DlpBench {
  runs: number;
  node: string;
  rows: DlpRow[];
  /** Corpus entries left out of the API body: the scanner blocks them JSON-escaped. */
  leftOut: string[];
}

const negatives: { name: string; text: string }[] = JSON.parse(readFileSync(new URL("../../lib/dlp/testdata/negative.json", import.meta.url), "utf8"));

/**
 * The corpus as the messages of one API request, repeated to at least `bytes`. Entries
 * the scanner blocks once JSON-escaped are left out, and named: the benchmark times a scan
 * that lets the body pass (a JSON document inside a JSON string: its "\n" escapes arrive
 * as "\\n", a backslash and an "n" once unescaped, which is no line break to a decoder).
 */
function apiBody(scanner: Scanner, bytes: number): { body: string; leftOut: string[] } {
  const message = (text: string) => ({ role: "user", content: text });
  const passing = negatives.filter((n) => scanner.scan(JSON.stringify(message(n.text))) === null);
  const messages: ReturnType<typeof message>[] = [];
  for (let size = 0; size < bytes; ) {
    for (const n of passing) {
      messages.push(message(n.text));
      size += n.text.length + 32;
    }
  }
  const leftOut = negatives.filter((n) => !passing.includes(n)).map((n) => n.name);
  return { body: JSON.stringify({ model: "bench", max_tokens: 1024, messages }), leftOut };
}

const fill = (unit: string, size: number) => unit.repeat(Math.ceil(size / unit.length)).slice(0, size);

/** Median CPU ms (user + system) of `runs` calls of `fn`, after one unmeasured call. */
function cpuMs(fn: () => void, runs: number): number {
  fn();
  const each: number[] = [];
  for (let i = 0; i < runs; i++) {
    const before = process.cpuUsage();
    fn();
    const d = process.cpuUsage(before);
    each.push((d.user + d.system) / 1000);
  }
  return percentile(each.sort((a, b) => a - b), 0.5);
}

function row(name: string, text: string, scanMs: number, baseline: string, baselineMs: number): DlpRow {
  return { name, bytes: text.length, scanMs, mibPerS: text.length / (1 << 20) / (scanMs / 1000), baseline, baselineMs, x: scanMs / Math.max(baselineMs, 0.001) };
}

function benchDlp(opts: { runs: number; log?: (s: string) => void }): DlpBench {
  const say = opts.log ?? ((s: string) => process.stderr.write(s + "\n"));
  const scanner = createScanner({ sensitive: [{ name: "API_TOKEN", value: "bb-bench-sensitive-value-0123456789" }] });
  const { body, leftOut } = apiBody(scanner, 1 << 20);
  const found = scanner.scan(body);
  if (found) throw new BbError("INTERNAL", `the corpus body was blocked (${found.label}): the benchmark times a scan that lets it pass`);
  say(`API body: ${body.length} bytes, ${opts.runs} runs`);
  const api = row("API body (JSON)", body, cpuMs(() => scanner.scan(body), opts.runs), "JSON.parse", cpuMs(() => JSON.parse(body), opts.runs));
  const size = 2_000_000;
  const crafted = fill(`-----BEGIN PRIVATE KEY-----${"A".repeat(39)} `, size);
  const ordinary = fill("The quick brown fox jumps over the lazy dog, 0123456789 and so on. ", size);
  say(`crafted and ordinary text: ${size} bytes each`);
  const backtrack = row("crafted key headers", crafted, cpuMs(() => scanner.scanAll(crafted), opts.runs), "scan of prose", cpuMs(() => scanner.scanAll(ordinary), opts.runs));
  return { runs: opts.runs, node: process.version, rows: [api, backtrack], leftOut };
}

export function formatDlp(b: DlpBench): string {
  const lines = [
    `DLP scanner, CPU time per scan (median of ${b.runs} runs), node ${b.node}`,
    `${"input".padEnd(22)}${"bytes".padStart(10)}${"scan ms".padStart(10)}${"MiB/s".padStart(9)}  ${"baseline".padEnd(16)}${"ms".padStart(8)}  ratio`,
    ...b.rows.map((r) => `${r.name.padEnd(22)}${String(r.bytes).padStart(10)}${r.scanMs.toFixed(2).padStart(10)}${r.mibPerS.toFixed(1).padStart(9)}  ${r.baseline.padEnd(16)}${r.baselineMs.toFixed(2).padStart(8)}  ${r.x.toFixed(2)}x`),
    ...(b.leftOut.length ? [`note: left out of the API body, blocked once JSON-escaped: ${b.leftOut.join("; ")}`] : []),
    "ratio: the scan's CPU time over the baseline's on this run's input; no target is set, compare runs",
  ];
  return lines.join("\n") + "\n";
}

export function dlpCommand(): Command {
  return new Command("dlp")
    .description("CPU time of the DLP scanner on a 1 MiB API body against JSON.parse of it, and on text crafted to make it backtrack against prose.")
    .option("--runs <n>", "timed runs per input (the median is reported)", runsFlag, 20)
    .option("--json", "print the result as JSON on stdout instead of the table")
    .addHelpText("after", `\nExample:\n  just bench dlp --runs 50\n\n${exitTableText()}\n`)
    .action(async (f: { runs: number; json?: boolean }) => {
      const b = benchDlp({ runs: f.runs });
      await writeStdout(f.json ? JSON.stringify(b, null, 2) + "\n" : formatDlp(b));
    });
}
