// bb-prepare --rebuild against a real engine: the old plan's agent container is asked
// whether it runs, and a running one is never re-prepared from under its session.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { labelArgs, testLabels } from "../../lib/docker/labels.ts";
import { savePlan, validatePlan } from "../../lib/plan/io.ts";
import type { Plan } from "../../lib/plan/schema.ts";
import { run } from "../../lib/proc.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { runTool } from "../../tests/support/tools.ts";

test("bb-prepare --identity --rebuild refuses a bottle whose agent container runs, leaving its plan as it was, and rebuilds one whose agent stopped", async (t) => {
  const state = await tempDir(t);
  const first = validatePlan((await runTool("bb-prepare", ["shell", "--state-dir", state])).json());
  // The agent stands in as a sleeper, recorded in the plan as bb-vm records its container.
  const id = (await run(["docker", "run", "--detach", ...labelArgs(testLabels()), "--network", "none", "debian:bookworm-slim", "sleep", "infinity"])).stdout.trim();
  t.after(async () => void (await run(["docker", "rm", "--force", id], { expect: [0, 1] })));
  const started: Plan = {
    ...first,
    vm: { kind: "docker", image: "debian:bookworm-slim", imageId: null, name: `bb-${first.slug}-agent`, id, artifact: null, user: "node", home: "/home/node", env: {}, startedAt: first.createdAt },
  };
  await savePlan(started);
  const before = await readFile(first.files.plan, "utf8");

  const refused = await runTool("bb-prepare", ["shell", "--state-dir", state, "--identity", first.slug, "--rebuild"]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, new RegExp(`^bb-prepare: error: Bottle ${first.slug} is running \\(its agent bb-${first.slug}-agent is up\\), so --rebuild would take its plan from under it: .just start slug=${first.slug}. attaches to it`, "m"));
  assert.equal(refused.stdout, "");
  assert.equal(await readFile(first.files.plan, "utf8"), before, "the running bottle's plan was rewritten");

  await run(["docker", "stop", "--time", "0", id]);
  const rebuilt = await runTool("bb-prepare", ["shell", "--state-dir", state, "--identity", first.slug, "--rebuild"]);
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  assert.equal(validatePlan(rebuilt.json()).slug, first.slug);
});
