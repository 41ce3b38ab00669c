import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { run } from "../../lib/proc.ts";
import { REPO } from "../support/tools.ts";

test("bench start --json measures the bare run, the engine floor, the full flow, every stage and the bundle's memory", async () => {
  const r = await run(["node", "--import", join(REPO, "node_modules/tsx/dist/loader.mjs"), join(REPO, "tests/bench/main.ts"), "start", "--runs", "1", "--json"], {
    timeoutMs: 300_000,
  });
  const b = JSON.parse(r.stdout);
  assert.ok(b.bareMs > 0 && b.fullMs > b.bareMs, JSON.stringify(b));
  assert.equal(b.ratio, b.fullMs / b.bareMs);
  // The floor does a subset of the flow's docker work, and more than the bare run's.
  assert.ok(b.floorMs > b.bareMs && b.floorMs < b.fullMs, JSON.stringify(b));
  assert.equal(b.floorRatio, b.floorMs / b.bareMs);
  assert.deepEqual(Object.keys(b.stagesMs), ["prepare", "bundle", "vm", "provision (+ wait)", "exec true", "teardown"]);
  assert.ok(b.bundleIdle.totalMiB > 0);
  assert.ok(b.bundleIdle.perDaemonMiB.firewall > 0 && b.bundleIdle.perDaemonMiB.init > 0);
  // Nothing of the floor's is left behind.
  const left = await run(["docker", "ps", "--all", "--quiet", "--filter", "name=bb-bench-floor-"]);
  const nets = await run(["docker", "network", "ls", "--quiet", "--filter", "name=bb-bench-floor-"]);
  assert.equal(left.stdout.trim() + nets.stdout.trim(), "");
});
