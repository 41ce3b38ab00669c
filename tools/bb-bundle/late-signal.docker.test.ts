// Ctrl-C to bb-bundle run by hand at its end, the bundle started: before its plan is written
// it removes what it started (container, networks), puts the bottle's saved plan back as it
// came in, prints no plan and exits 130; once the plan is written it changes nothing, says
// so, and exits 0. The real bb-bundle on a real engine, held (stop-after.mjs) right after it
// saves the bundled plan, or right after it writes it to stdout, then sent SIGINT and let go.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test, type TestContext } from "node:test";
import { ANY_EXIT, run } from "../../lib/proc.ts";
import { validatePlan } from "../../lib/plan/io.ts";
import { heldTool, reEscape } from "../../tests/support/held-tool.ts";
import { bottleResources } from "../../tests/support/leftovers.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { REPO, runTool } from "../../tests/support/tools.ts";

const linux = process.platform === "linux";

/** A bottle prepared afresh, its bundle started by `bb-bundle --no-wait` held after its call
 * `call` on a path (or stdout text) matching `path(bottle folder)`, then sent SIGINT and let
 * go: how it ended. */
async function interruptedAt(t: TestContext, call: string, path: (dir: string) => string) {
  const state = join(await tempDir(t), "state");
  const prepared = await runTool("bb-prepare", ["shell", "--state-dir", state]);
  assert.equal(prepared.code, 0, prepared.stderr);
  const plan = validatePlan(prepared.json());
  t.after(() => run([join(REPO, "bin/bb-cleanup"), "--yes", "-q", "--state-dir", state, "--slug", plan.slug], { expect: ANY_EXIT }));
  const held = await heldTool(t, "bb-bundle", ["--no-wait"], { call, path: path(reEscape(plan.files.dir)), input: prepared.stdout, env: { BB_TEST_LABEL: "1" } });
  const started = await bottleResources(plan.slug);
  assert.equal(started.containers.length, 1, `the setup: the bundle started: ${JSON.stringify(started)}`);
  return { ...(await held.interrupt()), plan, prepared: prepared.stdout };
}

test("Ctrl-C to bb-bundle by hand with the bundle started and its plan saved, not yet written, removes the container and networks, puts the saved plan back, prints no plan and exits 130", skipWhen(!linux && "reads the held tool's state in /proc (Linux)", "Ctrl-C before bb-bundle's plan is written"), async (t) => {
  const r = await interruptedAt(t, "rename", (dir) => `^${dir}/plan\\.json$`);
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /^bb-bundle: error: Interrupted by SIGINT$/m);
  assert.equal(r.stdout, "", "an interrupted bb-bundle printed a plan");
  assert.deepEqual(await bottleResources(r.plan.slug), { containers: [], networks: [], volumes: [] }, r.stderr);
  assert.equal(await readFile(r.plan.files.plan, "utf8"), r.prepared, "the bottle's saved plan is not the one bb-bundle was given");
});

test("Ctrl-C to bb-bundle by hand once its plan is written changes nothing: the plan is whole, the bundle runs, the exit is 0, and it says it came too late to stop", skipWhen(!linux && "reads the held tool's state in /proc (Linux)", "Ctrl-C after bb-bundle's plan is written"), async (t) => {
  const r = await interruptedAt(t, "stdout", () => `"bundle"`);
  assert.equal(r.code, 0, r.stderr);
  const bundled = validatePlan(JSON.parse(r.stdout));
  const slug = r.plan.slug;
  assert.match(r.stderr, new RegExp(`^bb-bundle: warning: SIGINT received too late to stop: the plan went out on stdout, so bottle ${slug}'s bundle stays up for the next step \\(bb-cleanup --slug ${slug} removes the bottle\\)$`, "m"));
  assert.doesNotMatch(r.stderr, /rolling back|Interrupted/);
  assert.deepEqual((await bottleResources(slug)).containers, [bundled.bundle!.container]);
  assert.equal(await readFile(r.plan.files.plan, "utf8"), r.stdout, "the bottle's saved plan is not the one written");
});
