// The DLP benchmark run for real with one run per input, so it cannot rot: both rows with
// positive numbers, their ratios, and the table people read.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { run } from "../../lib/proc.ts";
import { type DlpBench, formatDlp } from "./dlp.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const bench = (args: string[]) =>
  run(["node", "--import", join(REPO, "node_modules/tsx/dist/loader.mjs"), join(REPO, "tests/bench/main.ts"), "dlp", ...args], { expect: [0, 1, 2], timeoutMs: 120_000 });

test("bench dlp --json times the scan of the API body against JSON.parse of it, and crafted text against prose, in CPU ms", async () => {
  const r = await bench(["--runs", "1", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const b = JSON.parse(r.stdout) as DlpBench;
  assert.deepEqual(b.rows.map((x) => [x.name, x.baseline]), [["API body (JSON)", "JSON.parse"], ["crafted key headers", "scan of prose"]]);
  for (const x of b.rows) {
    assert.ok(x.bytes >= 1 << 20 && x.scanMs > 0 && x.baselineMs >= 0 && x.mibPerS > 0, JSON.stringify(x));
    assert.equal(x.x, x.scanMs / Math.max(x.baselineMs, 0.001));
  }
  const table = formatDlp(b);
  assert.match(table, /^API body \(JSON\) +\d+ +[\d.]+ +[\d.]+ {2}JSON\.parse +[\d.]+ {2}[\d.]+x$/m);
  assert.match(table, /^crafted key headers +\d+ +[\d.]+ +[\d.]+ {2}scan of prose +[\d.]+ {2}[\d.]+x$/m);
});

test("bench dlp --runs 0 is a usage error (exit 2) naming the flag", async () => {
  const r = await bench(["--runs", "0"]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--runs wants a whole number >= 1, got "0"/);
});
