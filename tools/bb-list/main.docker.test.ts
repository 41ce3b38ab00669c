import assert from "node:assert/strict";
import { test } from "node:test";
import type { ListRow } from "../../lib/inventory/format.ts";
import { makeBottle, testRun } from "../../lib/inventory/testdata/bottles.ts";
import { names } from "../../lib/layout.ts";

test("bb-list shows live bottles (running, and starting under a live owner) with their services; --json parses", async (t) => {
  const run = await testRun(t);
  const [running, starting, dead] = await Promise.all([
    makeBottle(t, run, { name: "running", bundle: true, agent: true }),
    makeBottle(t, run, { name: "starting", owner: "alive", networks: true }),
    makeBottle(t, run, { name: "dead", owner: "dead", bundle: true }),
  ]);

  const table = await run.tool("bb-list", []);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split("\n");
  assert.match(lines[0]!, /^BACKEND\s+SLUG\s+AGENT\s+SERVICES\s+STARTED\s+STATUS$/);
  assert.equal(lines.length, 3, table.stdout);
  assert.match(table.stdout, new RegExp(`docker\\s+${running.slug}\\s+researcher\\s+firewall,egress,supervise\\s+\\S+\\s+running\\n`));
  assert.match(table.stdout, new RegExp(`docker\\s+${starting.slug}\\s+researcher\\s+firewall,egress,supervise\\s+\\S+\\s+starting\\n`));
  assert.ok(!table.stdout.includes(dead.slug), "a dead bottle is not live");

  const json = await run.tool("bb-list", ["--json"]);
  assert.equal(json.code, 0, json.stderr);
  const rows = json.json() as ListRow[];
  assert.deepEqual(rows.map((r) => [r.slug, r.status, r.live]), [
    [running.slug, "running", true],
    [starting.slug, "starting", true],
  ]);
  const r = rows[0]!;
  assert.equal(r.backend, "docker");
  assert.equal(r.agent, "researcher");
  assert.deepEqual(r.services, ["firewall", "egress", "supervise"]);
  assert.ok(!Number.isNaN(Date.parse(r.startedAt!)), r.startedAt!);
  assert.deepEqual(r.containers.map((c) => [c.role, c.state]).sort(), [["agent", "running"], ["bundle", "running"]]);
  assert.equal(r.stateDir, running.dir);
  assert.deepEqual(rows[1]!.owner, { pid: starting.ownerPid, startedAt: rows[1]!.owner!.startedAt, alive: true });
});

test("bb-list --all also shows a dead bottle's leftovers as orphan", async (t) => {
  const run = await testRun(t);
  const dead = await makeBottle(t, run, { name: "dead", owner: "dead", bundle: true });
  const rows = (await run.tool("bb-list", ["--all", "--json"])).json() as ListRow[];
  assert.deepEqual(rows.map((r) => [r.slug, r.status, r.live]), [[dead.slug, "orphan", false]]);
  assert.match(rows[0]!.why, /owner pid \d+ gone, agent not running/);
  assert.deepEqual(rows[0]!.containers.map((c) => c.name), [names.bundle(dead.slug)]);

  const table = await run.tool("bb-list", ["--all"]);
  assert.match(table.stdout, new RegExp(`${dead.slug}\\s.*orphan\\s+1 container, 2 networks, state dir\\n`));
  const none = await run.tool("bb-list", []);
  assert.equal(none.code, 0);
  assert.equal(none.stdout, "");
  assert.match(none.stderr, /no live bottles/);
});
