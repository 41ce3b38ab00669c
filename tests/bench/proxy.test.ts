// The proxy benchmark run for real at a tiny duration, so it cannot rot: every row for
// both bodies with positive numbers, the ratios, the memory table, and the human report.
import assert from "node:assert/strict";
import { join } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { run, which } from "../../lib/proc.ts";
import { formatReport, type ProxyBenchResult } from "./proxy-report.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

function bench(args: string[]) {
  return run(["node", "--import", join(REPO, "node_modules/tsx/dist/loader.mjs"), join(REPO, "tests/bench/main.ts"), ...args], {
    expect: [0, 1, 2],
    timeoutMs: 60_000,
  });
}

describe("bench proxy", () => {
  it("--json measures direct, the TLS relay floor, firewall, firewall→egress and the mitmdump chain for both bodies, with ratios and memory", async () => {
    const mitmdump = await which("mitmdump");
    // Sources, not dist: the test checks the current code without needing a build.
    const r = await bench(["proxy", "--json", "--duration", "0.3", "--warmup", "0.1", "--connections", "1", "--daemons", "source"]);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as ProxyBenchResult;

    assert.equal(res.daemons, "source");
    assert.deepEqual(res.bodies.map((b) => b.bytes), [64, 1 << 20]);
    const rows = ["direct", "relay", "firewall", "chain", ...(mitmdump ? ["mitmdump"] : [])];
    assert.deepEqual(res.rows.map((x) => x.id), rows);
    if (!mitmdump) assert.match(res.skipped[0]!.reason, /mitmdump is not on PATH/);
    for (const body of res.bodies) {
      for (const row of rows) {
        const cell = res.cells.find((c) => c.row === row && c.body === body.name && c.connections === 1);
        assert.ok(cell, `no cell for ${row}, ${body.name}`);
        assert.ok(cell.requests > 0 && cell.rps > 0 && cell.p50Ms > 0 && cell.p99Ms >= cell.p50Ms, `${row}, ${body.name}: ${JSON.stringify(cell)}`);
        // Direct has no proxy to charge; every proxy row is charged what its processes used
        // (a 1 MiB response costs a proxy far more than one 10 ms clock tick in 0.3 s).
        if (row === "direct") assert.equal(cell.proxyCpuMs, null);
        else if (process.platform === "linux") assert.ok(body.bytes < 1 << 20 ? cell.proxyCpuMs! >= 0 : cell.proxyCpuMs! > 0, `${row}, ${body.name}: ${JSON.stringify(cell)}`);
      }
    }
    assert.equal(res.ratios.length, 2);
    for (const x of res.ratios) {
      assert.ok(Number.isFinite(x.addedP50Ms) && Number.isFinite(x.floorAddedP50Ms));
      if (mitmdump) assert.ok(x.throughputX! > 0 && x.floorThroughputX! > 0 && typeof x.throughputPass === "boolean");
      if (mitmdump && process.platform === "linux" && x.body === "1 MiB") assert.ok(x.cpuX! > 0, JSON.stringify(x));
    }
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

  it("refuses a bad --connections list with exit 2 before starting anything", async () => {
    const r = await bench(["proxy", "--connections", "0,8"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--connections wants a comma-separated list/);
    assert.doesNotMatch(r.stderr, /starting the upstream/);
  });
});
