// The start flow makes nothing outside the bottle's state dir: its files (plan copies) live
// in the bottle's flow/ folder from when bb-prepare names the bottle, so a flow killed at
// any moment (SIGKILL: no trap runs) leaves nothing that bb-cleanup would not remove with
// the bottle. No Docker engine needed: the kill comes while bb-prepare still runs, held
// stopped (SIGSTOP) so it cannot finish first.
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { start } from "../../lib/proc.ts";
import { flowChild } from "../support/flow-child.ts";
import { skipWhen } from "../support/skip.ts";
import { tempDir } from "../support/tmp.ts";
import { REPO } from "../support/tools.ts";
import { until } from "../support/until.ts";

const linux = process.platform === "linux";

test("a start flow SIGKILLed while bb-prepare runs leaves nothing in its TMPDIR", skipWhen(!linux && "finds the flow's bb-prepare in /proc (Linux)", "flow TMPDIR"), async (t) => {
  const [tmp, state] = [await tempDir(t), await tempDir(t)];
  const flow = start([join(REPO, "scripts/flow.sh"), "run", "agent=shell", "--", "true"], {
    env: { BB_STATE_DIR: state, TMPDIR: tmp },
    stdio: ["ignore", "ignore", "ignore"],
  });
  const exited = new Promise((r) => flow.once("exit", r));
  t.after(() => void flow.kill("SIGKILL"));
  let prepare: number | null = null;
  await until("the flow starting bb-prepare", () => (prepare = flowChild(flow.pid!, "bb-prepare")) !== null, { timeoutMs: 60_000 });
  process.kill(prepare!, "SIGSTOP");
  t.after(() => { try { process.kill(prepare!, "SIGKILL"); } catch { /* ended */ } });
  flow.kill("SIGKILL");
  await exited;
  assert.deepEqual((await readdir(tmp)).filter((n) => n.startsWith("bb-flow.")), []);
});
