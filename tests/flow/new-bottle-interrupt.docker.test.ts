// Ctrl-C, as a terminal sends it (SIGINT to the start flow's whole process group), while
// bb-prepare makes a brand-new bottle, or bb-bundle starts its bundle: the flow ends
// non-zero saying so, and nothing of the bottle is left, neither in its state root (no
// folder, owner record, lock or temp file) nor on the Docker engine; bb-cleanup then finds
// nothing of it, and the same `just run` works. The real flow and tools, the one at work
// held (stop-after.mjs) right after one of its steps.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test, type TestContext } from "node:test";
import { ANY_EXIT, run } from "../../lib/proc.ts";
import { flowChild, procState } from "../support/flow-child.ts";
import { bottleResources } from "../support/leftovers.ts";
import { skipWhen } from "../support/skip.ts";
import { tempDir } from "../support/tmp.ts";
import { REPO } from "../support/tools.ts";
import { until } from "../support/until.ts";

const linux = process.platform === "linux";
const HOOK = join(REPO, "tests/support/stop-after.mjs");
const bottles = (state: string) => join(state, "bottles");
const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const PREPARE_SAYS = /^bb-prepare: error: Interrupted by SIGINT$/m;

/** Which tool is held when the Ctrl-C comes, and where: after which of its calls (stop-after.mjs). */
const POINTS = [
  { tool: "bb-prepare", when: "its new folder just made", call: "mkdir", path: (b: string) => `^${b}/[^/]+$`, says: PREPARE_SAYS },
  { tool: "bb-prepare", when: "the bottle claimed for the flow (owner.json)", call: "link", path: (b: string) => `^${b}/[^/]+/owner\\.json$`, says: PREPARE_SAYS },
  { tool: "bb-prepare", when: "half its files written", call: "rename", path: (b: string) => `^${b}/[^/]+/firewall/policy\\.json$`, says: PREPARE_SAYS },
  // Not too late for bb-prepare's rollback: its plan is not out yet.
  { tool: "bb-prepare", when: "the plan saved, not yet printed", call: "rename", path: (b: string) => `^${b}/[^/]+/plan\\.json$`, says: PREPARE_SAYS },
  // Its plan out (the flow reading it): too late for bb-prepare, the flow tears the bottle down.
  { tool: "bb-prepare", when: "the plan printed", call: "stdout", path: () => `"slug"`, says: /^bb-prepare: warning: SIGINT received too late to stop: the plan went out on stdout to the start flow \(pid \d+\), whose bottle \S+ is now$[\s\S]*^» interrupted: \S+ was not started/m },
  // Its networks made and its CA placed, no container yet: bb-bundle undoes its part, the flow the rest.
  { tool: "bb-bundle", when: "its networks made, no container yet", call: "mkdir", path: (b: string) => `^${b}/[^/]+/firewall-blocked$`, says: /^bb-bundle: error: Interrupted by SIGINT$[\s\S]*^» tearing down /m },
] as const;

/** `just run agent=shell -- true` (flow.sh, as the recipe runs it) in a process group of its
 * own, as a terminal's foreground job. */
function flowJob(t: TestContext, env: Record<string, string>) {
  const flow = spawn(join(REPO, "scripts/flow.sh"), ["run", "agent=shell", "--", "true"], {
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env },
  });
  let err = "";
  flow.stderr!.on("data", (b: Buffer) => (err += b));
  const exited = new Promise<number | null>((r) => flow.on("close", (code) => r(code)));
  t.after(() => {
    try {
      process.kill(-flow.pid!, "SIGKILL");
    } catch {
      // Ended.
    }
  });
  return { flow, exited, err: () => err };
}

test("Ctrl-C while bb-prepare makes a brand-new bottle for just run, or bb-bundle starts it, ends the flow with 130 and leaves nothing: no folder, owner record or temp file, no container or network; bb-cleanup finds nothing, and the same just run then works", skipWhen(!linux && "reads the flow's children in /proc (Linux)", "Ctrl-C in bb-prepare or bb-bundle of a new bottle"), async (t) => {
  // A state root that is not there yet: the first bottle makes it.
  const state = join(await tempDir(t, "bb-new-bottle-int-"), "state");
  const env = { BB_STATE_DIR: state, BB_TEST_LABEL: "1" };
  const cleanup = (args: string[]) => run([join(REPO, "bin/bb-cleanup"), "--state-dir", state, "--filter-label", "bot-bottle.test=1", "--grace", "0", ...args], { expect: ANY_EXIT });
  t.after(async () => {
    for (const slug of await readdir(bottles(state)).catch(() => [])) await cleanup(["--yes", "-q", "--slug", slug]);
  });
  for (const point of POINTS) {
    const { flow, exited, err } = flowJob(t, {
      ...env,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import=${HOOK}`.trim(),
      BB_TEST_STOP_CALL: point.call,
      BB_TEST_STOP_PATH: point.path(reEscape(bottles(state))),
    });
    let held: number | null = null;
    await until(`${point.tool} held with ${point.when}`, () => (held = flowChild(flow.pid!, point.tool)) !== null && procState(held) === "T", {
      timeoutMs: 60_000,
      why: err,
    });
    t.after(() => {
      try {
        process.kill(held!, "SIGCONT");
      } catch {
        // Ended.
      }
    });
    const made = await readdir(bottles(state));
    assert.equal(made.length, 1, `${point.when}: the setup: bb-prepare made one bottle folder: ${made}`);
    const slug = made[0]!;
    if (point.tool === "bb-bundle") assert.equal((await bottleResources(slug)).networks.length, 2, `${point.when}: the setup: its networks made`);
    process.kill(-flow.pid!, "SIGINT");
    process.kill(held!, "SIGCONT");
    assert.equal(await exited, 130, `${point.when}:\n${err()}`);
    assert.match(err(), point.says, point.when);
    assert.deepEqual(await readdir(bottles(state)), [], `${point.when}: left in the state root:\n${err()}`);
    assert.deepEqual(await bottleResources(slug), { containers: [], networks: [], volumes: [] }, point.when);
    // bb-cleanup, asked afterwards, has nothing of it to remove.
    const all = await cleanup(["--dry-run", "--json"]);
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual((JSON.parse(all.stdout) as { plan: { slug: string }[] }).plan.filter((r) => r.slug === slug), [], point.when);
    const one = await cleanup(["--yes", "--json", "--slug", slug]);
    assert.equal(one.code, 0, one.stderr);
    assert.deepEqual((JSON.parse(one.stdout) as { plan: unknown[] }).plan, [], point.when);
  }
  const again = await run([join(REPO, "scripts/flow.sh"), "run", "agent=shell", "--", "true"], { env, expect: ANY_EXIT, timeoutMs: 300_000 });
  assert.equal(again.code, 0, again.stderr);
  assert.ok(!existsSync(join(bottles(state), /bot-bottle preflight: (\S+)/.exec(again.stderr)?.[1] ?? "none")), "the run after left its bottle");
});
