import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { BbError } from "../errors.ts";
import { fifo, settled } from "../../tests/support/fifo.ts";
import { samplePlan } from "../../tests/support/plans.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { serializePlan } from "./io.ts";
import { locatePlan } from "./locate.ts";

test("locatePlan(--slug) reads the bottle's saved plan.json", async (t) => {
  const root = await tempDir(t);
  const plan = samplePlan();
  await mkdir(join(root, "bottles", plan.slug), { recursive: true });
  await writeFile(join(root, "bottles", plan.slug, "plan.json"), serializePlan(plan));
  assert.deepEqual(await locatePlan({ slug: plan.slug, stateDir: root }), plan);
});

test("locatePlan(--slug) refuses a bottle's plan.json that is a FIFO (PLAN_INVALID, naming it) instead of waiting on it, Ctrl-C and all", async (t) => {
  const root = await tempDir(t);
  const { slug } = samplePlan();
  const file = join(root, "bottles", slug, "plan.json");
  await mkdir(join(root, "bottles", slug), { recursive: true });
  await fifo(t, file);
  const err = await settled("locatePlan done with the FIFO", locatePlan({ slug, stateDir: root }));
  assert.ok(err instanceof BbError && err.code === "PLAN_INVALID", String(err));
  assert.equal(err.message, `Cannot read plan file ${file}: it is a FIFO, not a regular file`);
});
