// A Ctrl-C that reaches the start flow as its bb-prepare ends (too late for bb-prepare's own
// rollback: the plan is out) still tears the new bottle down: the flow records the slug
// bb-prepare named before it acts on the signal. The real flow and bb-prepare; the signal
// sent to the flow alone while bb-prepare is held stopped (SIGSTOP), then let go.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
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
/** Whether `pid` holds a SIGINT for later: pending, and blocked (bash blocks it while it
 * reads a command substitution's output, and runs its trap after), per /proc/PID/status. */
function intHeld(pid: number): boolean {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const has = (f: string) => (BigInt("0x" + new RegExp(`^${f}:\\s*([0-9a-f]+)$`, "m").exec(status)![1]) & 2n) !== 0n;
  return (has("SigPnd") || has("ShdPnd")) && has("SigBlk");
}

test("a Ctrl-C that reaches just start as its bb-prepare ends, not bb-prepare, leaves nothing of the new bottle", skipWhen(!linux && "reads the flow's children and pending signals in /proc (Linux)", "Ctrl-C as bb-prepare ends"), async (t) => {
  const state = await tempDir(t);
  const slug = `sig-${process.pid}`;
  const flow = start([join(REPO, "scripts/flow.sh"), "start", "agent=shell", `slug=${slug}`, "yes=true"], { env: { BB_STATE_DIR: state }, stdio: ["ignore", "ignore", "pipe"] });
  t.after(() => void flow.kill("SIGKILL"));
  let err = "";
  flow.stderr!.on("data", (b: Buffer) => (err += b));
  const exited = new Promise<number | null>((r) => flow.on("close", (code) => r(code)));
  let prepare: number | null = null;
  await until("the flow starting bb-prepare", () => (prepare = flowChild(flow.pid!, "bb-prepare")) !== null, { timeoutMs: 60_000, why: () => err });
  process.kill(prepare!, "SIGSTOP");
  t.after(() => { try { process.kill(prepare!, "SIGCONT"); } catch { /* ended */ } });
  process.kill(flow.pid!, "SIGINT");
  await until("the SIGINT held by the flow", () => intHeld(flow.pid!), { timeoutMs: 30_000 });
  process.kill(prepare!, "SIGCONT");
  assert.equal(await exited, 130, err);
  assert.ok(!existsSync(join(state, "bottles", slug)), `the new bottle's folder was left:\n${err}`);
});
