import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { run } from "../../lib/proc.ts";
import { REPO } from "../support/tools.ts";

test("bench start --json measures the bare run, the full flow, every stage and the bundle's memory", async () => {
  const r = await run(["node", "--import", join(REPO, "node_modules/tsx/dist/loader.mjs"), join(REPO, "tests/bench/main.ts"), "start", "--runs", "1", "--json"], {
    timeoutMs: 300_000,
  });
  const b = JSON.parse(r.stdout);
  assert.ok(b.bareMs > 0 && b.fullMs > b.bareMs, JSON.stringify(b));
  assert.equal(b.ratio, b.fullMs / b.bareMs);
  assert.deepEqual(Object.keys(b.stagesMs), ["prepare", "bundle", "vm", "provision (+ wait)", "exec true", "teardown"]);
  assert.ok(b.bundleIdle.totalMiB > 0);
  assert.ok(b.bundleIdle.perDaemonMiB.firewall > 0 && b.bundleIdle.perDaemonMiB.init > 0);
});
