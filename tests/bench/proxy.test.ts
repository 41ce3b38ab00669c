// The proxy benchmark run for real at a tiny duration, so it cannot rot: every row for
// both bodies with positive numbers, the ratios, the memory table, and the human report.
import assert from "node:assert/strict";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { run, which } from "../../lib/proc.ts";
import { skipWhen } from "../support/skip.ts";
import { formatReport, type ProxyBenchResult } from "./proxy-report.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

function bench(args: string[]) {
  return run(["node", "--import", join(REPO, "node_modules/tsx/dist/loader.mjs"), join(REPO, "tests/bench/main.ts"), ...args], {
    expect: [0, 1, 2],
    timeoutMs: 60_000,
  });
}

const mitmdump = await which("mitmdump");
const noMitmdump = !mitmdump && "mitmdump is not on PATH";

let measured: Promise<ProxyBenchResult> | undefined;
/** One real run of the benchmark, shared by the tests that read it. */
function measure(): Promise<ProxyBenchResult> {
  measured ??= (async () => {
    // Sources, not dist: the test checks the current code without needing a build.
    const r = await bench(["proxy", "--json", "--duration", "0.3", "--warmup", "0.1", "--connections", "1", "--daemons", "source"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as ProxyBenchResult;
  })();
  return measured;
}

/** A row's cell for each body: positive numbers, and (on Linux) the CPU its proxy processes used. */
function assertCells(res: ProxyBenchResult, row: string): void {
  for (const body of res.bodies) {
    const cell = res.cells.find((c) => c.row === row && c.body === body.name && c.connections === 1);
    assert.ok(cell, `no cell for ${row}, ${body.name}`);
    assert.ok(cell.requests > 0 && cell.rps > 0 && cell.p50Ms > 0 && cell.p99Ms >= cell.p50Ms, `${row}, ${body.name}: ${JSON.stringify(cell)}`);
    // Direct has no proxy to charge; every proxy row is charged what its processes used
    // (a 1 MiB response costs a proxy far more than one 10 ms clock tick in 0.3 s).
    if (row === "direct") assert.equal(cell.proxyCpuMs, null);
    else if (process.platform === "linux") {
      assert.equal(typeof cell.proxyCpuMs, "number", `${row}, ${body.name}: ${JSON.stringify(cell)}`);
      assert.ok(body.bytes < 1 << 20 ? cell.proxyCpuMs! >= 0 : cell.proxyCpuMs! > 0, `${row}, ${body.name}: ${JSON.stringify(cell)}`);
    }
  }
}

// test(), not describe/it: deno counts a skipped it() nowhere in its summary.
test("bench proxy --json measures direct, the TLS relay floor, firewall and firewall→egress for both bodies, with ratios, memory and the report", async () => {
  const res = await measure();
  assert.equal(res.daemons, "source");
  assert.deepEqual(res.bodies.map((b) => b.bytes), [64, 1 << 20]);
  assert.deepEqual(res.rows.map((x) => x.id), ["direct", "relay", "firewall", "chain", ...(mitmdump ? ["mitmdump"] : [])]);
  if (!mitmdump) assert.match(res.skipped[0]!.reason, /mitmdump is not on PATH/);
  for (const row of ["direct", "relay", "firewall", "chain"]) assertCells(res, row);
  assert.equal(res.ratios.length, 2);
  for (const x of res.ratios) assert.ok(Number.isFinite(x.addedP50Ms) && Number.isFinite(x.floorAddedP50Ms));
  const names = res.memory.map((m) => m.name);
  assert.deepEqual(names.slice(0, 3), ["firewall (alone)", "firewall (→egress)", "egress"]);
  assert.deepEqual(names.slice(-2), ["relay front", "relay back"]);
  for (const m of res.memory) assert.ok(m.idleRssKiB! > 0 && m.peakRssKiB! >= m.idleRssKiB!, JSON.stringify(m));

  const text = formatReport(res);
  // One line of numbers per row in each body's table.
  const numbered = (label: string) => text.split("\n").filter((l) => l.startsWith(label) && /^\s+\d/.test(l.slice(label.length)));
  for (const label of res.rows.map((x) => x.label)) assert.equal(numbered(label).length, 2, label);
  assert.match(text, /small, 1 connection .*(PASS|MISS)/);
});

test("bench proxy --json measures the mitmdump chain for both bodies, and the ratios against it", skipWhen(noMitmdump, "bench mitmdump row"), async () => {
  const res = await measure();
  assertCells(res, "mitmdump");
  for (const x of res.ratios) {
    assert.ok(x.throughputX! > 0 && x.floorThroughputX! > 0 && typeof x.throughputPass === "boolean", JSON.stringify(x));
    if (process.platform === "linux" && x.body === "1 MiB") assert.ok(x.cpuX! > 0, JSON.stringify(x));
  }
});

test("bench proxy refuses a bad --connections list with exit 2 before starting anything", async () => {
  const r = await bench(["proxy", "--connections", "0,8"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--connections wants a comma-separated list/);
  assert.doesNotMatch(r.stderr, /starting the upstream/);
});
