// The start flow makes nothing outside the bottle's state dir: its files (plan copies) live
// in the bottle's flow/ folder from when bb-prepare names the bottle, so a flow killed at
// any moment (SIGKILL: no trap runs) leaves nothing that bb-cleanup would not remove with
// the bottle. No Docker engine needed: the kill comes while bb-prepare still runs.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { run, start } from "../../lib/proc.ts";
import { tempDir } from "../support/tmp.ts";
import { REPO } from "../support/tools.ts";

test("a start flow SIGKILLed while bb-prepare runs leaves nothing in its TMPDIR", async (t) => {
  const [tmp, state, manifest] = [await tempDir(t), await tempDir(t), await tempDir(t)];
  // An agent file that is a FIFO: bb-prepare waits on it until the test lets it go.
  await mkdir(join(manifest, "agents"));
  const fifo = join(manifest, "agents", "slow.md");
  await run(["mkfifo", fifo]);
  const flow = start([join(REPO, "scripts/flow.sh"), "run", "agent=slow", `manifest=${manifest}`, "--", "true"], {
    env: { BB_STATE_DIR: state, TMPDIR: tmp },
    stdio: ["ignore", "ignore", "ignore"],
  });
  t.after(async () => {
    flow.kill("SIGKILL");
    // Let a bb-prepare still waiting on the FIFO go: opening it for writing wakes its reader.
    if (existsSync(fifo)) await run(["sh", "-c", `exec 3>"${fifo}"`], { timeoutMs: 5000 }).catch(() => {});
  });
  // Until bb-prepare runs (its node process holds the FIFO open), then kill the flow.
  for (let i = 0; i < 300 && !(await run(["pgrep", "-f", `bb-prepare.*slow`], { expect: [0, 1] })).stdout.trim(); i++) await sleep(50);
  assert.ok((await run(["pgrep", "-f", `bb-prepare.*slow`], { expect: [0, 1] })).stdout.trim(), "bb-prepare never started");
  flow.kill("SIGKILL");
  await new Promise((r) => flow.once("exit", r));
  assert.deepEqual((await readdir(tmp)).filter((n) => n.startsWith("bb-flow.")), []);
});
