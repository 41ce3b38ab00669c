// Ctrl-C while bb-prepare runs by hand (no start flow whose teardown would clean up): what
// this run made goes, what was there stays as it was, and the same command works again.
// The real bb-prepare, held inside its step by what it waits on (a decision lock another
// process holds), then sent SIGINT; and what it must never wait on (a FIFO for a record).
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { folderState } from "../../tests/support/folder-state.ts";
import { holdDecisionLock } from "../../tests/support/held-lock.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { REPO, runTool } from "../../tests/support/tools.ts";
import { until } from "../../tests/support/until.ts";
import { validatePlan } from "../../lib/plan/io.ts";
import { run, start } from "../../lib/proc.ts";

/** bb-prepare started from source with its output taken, and how it ended. */
function startPrepare(t: TestContext, args: string[]) {
  const child = start([join(REPO, "bin/bb-prepare"), ...args], { stdio: ["ignore", "pipe", "pipe"], env: { BB_FROM_SOURCE: "1", NO_COLOR: "1" } });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once("close", (code, signal) => r({ code, signal })));
  t.after(() => child.kill("SIGKILL"));
  return { child, ended, stdout: () => stdout, stderr: () => stderr };
}

/** The state of a prepared bottle `dev` in a fresh state root. */
async function preparedBottle(t: TestContext) {
  const state = await tempDir(t);
  const first = await runTool("bb-prepare", ["shell", "--state-dir", state, "--identity", "dev"]);
  assert.equal(first.code, 0, first.stderr);
  return { state, dir: validatePlan(first.json()).files.dir };
}

test("Ctrl-C while bb-prepare --owner-pid waits for the bottle's decision lock gives its claim back, leaves the earlier plan as it was and exits 130; the same command then works", async (t) => {
  const { state, dir } = await preparedBottle(t);
  // The start flow bb-prepare claims the bottle for: a process that lives through the test.
  const flow = start(["sleep", "120"], { stdio: "ignore" });
  t.after(() => flow.kill("SIGKILL"));
  // A bb-supervise deciding for this bottle, as far as bb-prepare can tell.
  const lock = await holdDecisionLock(t, dir);
  const before = await folderState(dir);

  const args = ["shell", "--state-dir", state, "--identity", "dev", "--owner-pid", String(flow.pid)];
  const p = startPrepare(t, args);
  await until("bb-prepare waiting for the decision lock", () => /waiting for another bb-supervise or bb-prepare on this bottle/.test(p.stderr()), { timeoutMs: 60_000, why: p.stderr });
  assert.ok(existsSync(join(dir, "owner.json")), "the setup: bb-prepare claims the bottle before it waits for the lock");
  // By pid: Deno's child.kill() has the child's end reported as that signal, whatever
  // its exit code.
  process.kill(p.child.pid!, "SIGINT");
  const end = await p.ended;
  assert.deepEqual(end, { code: 130, signal: null }, p.stderr());
  assert.match(p.stderr(), /^bb-prepare: error: Interrupted by SIGINT$/m);
  assert.equal(p.stdout(), "", "an interrupted prepare printed a plan");
  assert.deepEqual(await folderState(dir), before, "the interrupted prepare left its claim, a temp file or a rewritten file");

  await lock.release();
  const again = await runTool("bb-prepare", args);
  assert.equal(again.code, 0, again.stderr);
});

test("bb-prepare --identity over an approvals record that is a FIFO refuses it at once, naming it, with the folder as it was (waiting on it, a Ctrl-C could not roll back)", async (t) => {
  const { state, dir } = await preparedBottle(t);
  const fifo = join(dir, "approved-hosts.json");
  await run(["mkfifo", fifo]);
  const before = await folderState(dir);
  const p = startPrepare(t, ["shell", "--state-dir", state, "--identity", "dev"]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const end = await Promise.race([p.ended, new Promise<null>((r) => (timer = setTimeout(() => r(null), 60_000)))]);
  clearTimeout(timer);
  assert.ok(end, `bb-prepare still waits on the FIFO after 60 s:\n${p.stderr()}`);
  assert.deepEqual(end, { code: 1, signal: null }, p.stderr());
  assert.match(p.stderr(), new RegExp(`^bb-prepare: error: Cannot read ${fifo}: .*is a FIFO, not a regular file$`, "m"));
  assert.equal(p.stdout(), "");
  assert.deepEqual(await folderState(dir), before, "the refused prepare left its lock, a temp file or a rewritten file");
});
