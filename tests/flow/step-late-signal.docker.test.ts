// Ctrl-C to bb-bundle, bb-vm or bb-provision run by hand at its end, its work done: before
// its plan is written it removes what it started (bb-vm: its agent, not bb-bundle's
// bundle; bb-provision starts nothing, and says what it provisioned stays), puts the
// bottle's saved plan back as it came in, prints no plan and exits 130; once the plan is
// written it changes nothing, says so, and exits 0. The real tools on a
// real engine, the one under test held (stop-after.mjs) right after it saves its plan, or
// right after it writes it to stdout, then sent SIGINT and let go.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test, type TestContext } from "node:test";
import { ANY_EXIT, run } from "../../lib/proc.ts";
import { validatePlan } from "../../lib/plan/io.ts";
import { heldTool, reEscape } from "../support/held-tool.ts";
import { bottleResources } from "../support/leftovers.ts";
import { skipWhen } from "../support/skip.ts";
import { tempDir } from "../support/tmp.ts";
import { REPO, runTool } from "../support/tools.ts";

const linux = process.platform === "linux";
const env = { BB_TEST_LABEL: "1" };

/** Each step as run by hand: what runs before it, what it starts (a container) and what a
 * Ctrl-C is told before and after its plan is out. */
const STEPS = [
  { tool: "bb-bundle", before: [], section: "bundle", starts: "bundle", stopping: "stopping and rolling back", late: (slug: string) => `so bottle ${slug}'s bundle stays up for the next step \\(bb-cleanup --slug ${slug} removes the bottle\\)` },
  { tool: "bb-vm", before: ["bb-bundle"], section: "vm", starts: "agent", stopping: "stopping and rolling back", late: (slug: string) => `so bottle ${slug}'s agent stays up for the next step \\(bb-cleanup --slug ${slug} removes the bottle\\)` },
  {
    tool: "bb-provision",
    before: ["bb-bundle", "bb-vm"],
    section: "provision",
    starts: null,
    stopping: "stopping \\(what is provisioned in bottle \\S+ stays: bb-cleanup --slug \\S+ removes the bottle\\)",
    late: (slug: string) => `bottle ${slug} is provisioned \\(bb-cleanup --slug ${slug} removes it\\)`,
  },
] as const;

/** A bottle prepared afresh and taken through the steps before `step`, then `step` held
 * after its call `call` on a path (or stdout text) matching `path(bottle folder)`, sent
 * SIGINT and let go: how it ended, with what the bottle had on the engine before the step. */
async function interruptedAt(t: TestContext, step: (typeof STEPS)[number], call: string, path: (dir: string) => string) {
  const state = join(await tempDir(t), "state");
  const prepared = await runTool("bb-prepare", ["shell", "--state-dir", state]);
  assert.equal(prepared.code, 0, prepared.stderr);
  const slug = validatePlan(prepared.json()).slug;
  t.after(() => run([join(REPO, "bin/bb-cleanup"), "--yes", "-q", "--state-dir", state, "--slug", slug], { expect: ANY_EXIT }));
  let input = prepared.stdout;
  for (const tool of step.before) {
    const r = await runTool(tool, tool === "bb-bundle" ? ["--no-wait"] : [], { input, env });
    assert.equal(r.code, 0, r.stderr);
    input = r.stdout;
  }
  const given = validatePlan(JSON.parse(input));
  const before = await bottleResources(slug);
  const held = await heldTool(t, step.tool, step.tool === "bb-bundle" ? ["--no-wait"] : [], { call, path: path(reEscape(given.files.dir)), input, env });
  const up = await bottleResources(slug);
  if (step.starts) assert.equal(up.containers.length, before.containers.length + 1, `the setup: ${step.tool} started its ${step.starts}: ${JSON.stringify(up)}`);
  return { ...(await held.interrupt()), slug, given, input, before };
}

for (const step of STEPS) {
  test(`Ctrl-C to ${step.tool} by hand with its work done and its plan saved, not yet written, removes what it started, puts the saved plan back, prints no plan and exits 130`, skipWhen(!linux && "reads the held tool's state in /proc (Linux)", `Ctrl-C before ${step.tool}'s plan is written`), async (t) => {
    const r = await interruptedAt(t, step, "rename", (dir) => `^${dir}/plan\\.json$`);
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, new RegExp(`^${step.tool}: warning: SIGINT received: ${step.stopping}$[\\s\\S]*^${step.tool}: error: Interrupted by SIGINT$`, "m"));
    assert.equal(r.stdout, "", `an interrupted ${step.tool} printed a plan`);
    assert.deepEqual(await bottleResources(r.slug), r.before, r.stderr);
    assert.equal(await readFile(r.given.files.plan, "utf8"), r.input, `the bottle's saved plan is not the one ${step.tool} was given`);
  });

  test(`Ctrl-C to ${step.tool} by hand once its plan is written changes nothing: the plan is whole, what it started runs, the exit is 0, and it says it came too late to stop`, skipWhen(!linux && "reads the held tool's state in /proc (Linux)", `Ctrl-C after ${step.tool}'s plan is written`), async (t) => {
    const r = await interruptedAt(t, step, "stdout", () => `"${step.section}"`);
    assert.equal(r.code, 0, r.stderr);
    const out = validatePlan(JSON.parse(r.stdout));
    assert.match(r.stderr, new RegExp(`^${step.tool}: warning: SIGINT received too late to stop: the plan went out on stdout(,|:) ${step.late(r.slug)}$`, "m"));
    assert.doesNotMatch(r.stderr, /rolling back|Interrupted/);
    const started = step.starts === "bundle" ? [out.bundle!.container] : step.starts === "agent" ? [out.vm!.name] : [];
    assert.deepEqual((await bottleResources(r.slug)).containers, [...r.before.containers, ...started].sort());
    assert.equal(await readFile(r.given.files.plan, "utf8"), r.stdout, "the bottle's saved plan is not the one written");
  });
}
