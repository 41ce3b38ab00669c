import assert from "node:assert/strict";
import { test } from "node:test";
import { classify } from "./classify.ts";
import type { BottleFacts } from "./collect.ts";
import { selectForCleanup } from "./scan.ts";

const NOW = Date.parse("2026-05-27T18:00:00Z");
const dir = { path: "/s/bottles/dead-1", plan: null, planError: "no plan.json", owner: null, ownerAlive: false, kept: false, mtimeMs: NOW - 3600_000 };
const bottle = (over: Partial<BottleFacts>) => classify({ slug: "dead-1", dir: null, elsewhere: null, containers: [], networks: [], volumes: [], machines: [], ...over }, { now: NOW });

test("a sweep leaves a stopped smolvm machine that nothing else ties to bot-bottle (your own bb-dev), and says how to remove it; --slug takes it", () => {
  const mine = bottle({ slug: "dev", machines: [{ name: "bb-dev", state: "stopped" }] });
  const dead = bottle({ dir, machines: [{ name: "bb-dead-1", state: "stopped" }] });
  const swept = selectForCleanup([mine, dead]);
  assert.deepEqual(swept.removals.map((r) => r.slug), ["dead-1"], "the dead bottle with a state dir goes, machine and all");
  assert.deepEqual(swept.kept.map((k) => k.slug), ["dev"]);
  assert.match(swept.kept[0]!.why, /only a stopped smolvm machine named like its \(bb-dev\): .* it may be yours; bb-cleanup --slug dev removes it/);
  assert.deepEqual(selectForCleanup([mine, dead], { slug: "dev" }).removals.map((r) => r.slug), ["dev"]);
});
