// Ctrl-C to bb-prepare run by hand at its end: before its plan is written it rolls back (a
// brand-new bottle's folder goes), prints no plan and exits 130; once the plan is written
// it changes nothing, says so, and exits 0. The real bb-prepare, held (stop-after.mjs)
// right after it saves the plan in the bottle's folder, or right after it writes it to
// stdout, then sent SIGINT and let go (SIGCONT).
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { heldTool, reEscape } from "../../tests/support/held-tool.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { validatePlan } from "../../lib/plan/io.ts";

const linux = process.platform === "linux";

/** `bb-prepare shell` into a fresh state root, held after its call `call` on a path (or
 * stdout text) matching `path(bottles)`, then sent SIGINT and let go: how it ended.
 * `stdoutClosed`: nobody reads its stdout. */
async function interruptedAt(t: TestContext, call: string, path: (bottles: string) => string, o: { stdoutClosed?: boolean } = {}) {
  const state = await tempDir(t);
  const bottles = join(state, "bottles");
  const held = await heldTool(t, "bb-prepare", ["shell", "--state-dir", state], { call, path: path(reEscape(bottles)), ...o });
  const made = await readdir(bottles);
  assert.equal(made.length, 1, `the setup: bb-prepare made one bottle folder: ${made}`);
  return { ...(await held.interrupt()), bottles, slug: made[0]! };
}

test("Ctrl-C to bb-prepare by hand with its plan saved but not yet written (the preflight summary to come) removes the new bottle's folder, prints no plan and exits 130", skipWhen(!linux && "reads the held tool's state in /proc (Linux)", "Ctrl-C before bb-prepare's plan is written"), async (t) => {
  const r = await interruptedAt(t, "rename", (b) => `^${b}/[^/]+/plan\\.json$`);
  assert.deepEqual([r.code, r.signal], [130, null], r.stderr);
  assert.match(r.stderr, /^bb-prepare: warning: SIGINT received: stopping and rolling back$/m);
  assert.match(r.stderr, /^bb-prepare: error: Interrupted by SIGINT$/m);
  assert.equal(r.stdout, "", "an interrupted prepare printed a plan");
  assert.deepEqual(await readdir(r.bottles), [], `the new bottle's folder was left:\n${r.stderr}`);
});

test("Ctrl-C to bb-prepare by hand once its plan is written changes nothing: the plan is whole, the bottle stays, the exit is 0, and it says it came too late to stop", skipWhen(!linux && "reads the held tool's state in /proc (Linux)", "Ctrl-C after bb-prepare's plan is written"), async (t) => {
  const r = await interruptedAt(t, "stdout", () => `"slug"`);
  assert.deepEqual([r.code, r.signal], [0, null], r.stderr);
  assert.equal(validatePlan(JSON.parse(r.stdout)).slug, r.slug);
  assert.match(r.stderr, new RegExp(`^bb-prepare: warning: SIGINT received too late to stop: the plan went out on stdout, so bottle ${r.slug} stays as prepared \\(bb-cleanup --slug ${r.slug} removes it\\)$`, "m"));
  assert.doesNotMatch(r.stderr, /rolling back|Interrupted/);
  assert.deepEqual(await readdir(r.bottles), [r.slug]);
});

test("Ctrl-C to bb-prepare by hand as it fails to write its plan (the reader gone) is told bb-prepare had ended, not that the plan went out", skipWhen(!linux && "reads the held tool's state in /proc (Linux)", "Ctrl-C as bb-prepare's plan write fails"), async (t) => {
  const r = await interruptedAt(t, "stdout", () => `"slug"`, { stdoutClosed: true });
  assert.deepEqual([r.code, r.signal], [1, null], r.stderr);
  assert.match(r.stderr, new RegExp(`^bb-prepare: error: stdout was closed before the output was written: .*bb-cleanup --slug ${r.slug} removes it$`, "m"));
  assert.match(r.stderr, /^bb-prepare: warning: SIGINT received too late to stop: bb-prepare had ended \(said above\): nothing left to stop or roll back$/m);
  assert.doesNotMatch(r.stderr, /went out/);
  assert.deepEqual(await readdir(r.bottles), [r.slug]);
});
