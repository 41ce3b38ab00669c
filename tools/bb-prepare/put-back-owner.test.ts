// bb-prepare --put-back by hand, naming a start flow that still runs: that flow's copy is
// its own to put back (at its "n" or Ctrl-C, from its teardown), so the folder it is
// rebuilding is not pulled from under it. Real bb-prepare runs; the flow a live process.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { start } from "../../lib/proc.ts";
import { folderState } from "../../tests/support/folder-state.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { runTool } from "../../tests/support/tools.ts";

test("bb-prepare --put-back --owner-pid P, run by hand while flow P lives, refuses (BUSY) and leaves P's folder and copy as they are; once P is gone it puts them back", async (t) => {
  const state = await tempDir(t);
  const first = await runTool("bb-prepare", ["shell", "--state-dir", state, "--identity", "dev"]);
  assert.equal(first.code, 0, first.stderr);
  const dir = join(state, "bottles", "dev");
  const flow = start(["sleep", "120"], { stdio: "ignore" });
  t.after(() => flow.kill("SIGKILL"));
  const p = String(flow.pid);
  const rebuild = await runTool("bb-prepare", ["shell", "--state-dir", state, "--identity", "dev", "--owner-pid", p, "--copy-before"]);
  assert.equal(rebuild.code, 0, rebuild.stderr);
  const copy = join(dir, "flow", `before.${p}`);
  assert.ok(existsSync(copy), "the setup: the rebuild copied the folder aside");
  const held = await folderState(dir);

  const r = await runTool("bb-prepare", ["--put-back", "--state-dir", state, "--identity", "dev", "--owner-pid", p]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`copy .*before\\.${p} belongs to start flow pid ${p}, which still runs`));
  assert.deepEqual(await folderState(dir), held, "the refused put-back changed the flow's folder");

  flow.kill("SIGKILL");
  await new Promise((r) => flow.once("close", r));
  const gone = await runTool("bb-prepare", ["--put-back", "--state-dir", state, "--identity", "dev", "--owner-pid", p]);
  assert.equal(gone.code, 0, gone.stderr);
  assert.ok(!existsSync(copy), "the copy of a flow that is gone stayed");
});
