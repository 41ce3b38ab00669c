import assert from "node:assert/strict";
import { test } from "node:test";
import { classify, GRACE_MS, parseDockerTime } from "./classify.ts";
import type { BottleFacts, StateDirFacts } from "./collect.ts";
import { samplePlan } from "../../tests/support/plans.ts";

const NOW = Date.parse("2026-05-27T18:00:00Z");
const LONG_AGO = NOW - 3600_000;

function dir(over: Partial<StateDirFacts> = {}): StateDirFacts {
  return { path: "/s/bottles/r-1", plan: null, planError: "no plan.json", owner: null, ownerAlive: false, kept: false, mtimeMs: LONG_AGO, ...over };
}

function facts(over: Partial<BottleFacts> = {}): BottleFacts {
  return { slug: "r-1", dir: dir(), elsewhere: null, containers: [], networks: [], volumes: [], machines: [], ...over };
}

const container = (role: string, state: string, createdAt = "2026-05-27 17:00:00 +0000 UTC") => ({
  name: `bb-r-1-${role}`, id: role, role, backend: "docker", agent: "researcher", state, createdAt,
});

test("a running agent container makes a bottle live and running, with no owner record", () => {
  const b = classify(facts({ containers: [container("agent", "running"), container("bundle", "running")] }), { now: NOW });
  assert.equal(b.live, true);
  assert.equal(b.status, "running");
  assert.equal(b.why, "agent container running");
  assert.equal(b.agent, "researcher");
});

test("a running smolvm machine makes a bottle live; a stopped one does not", () => {
  const running = classify(facts({ machines: [{ name: "bb-r-1", state: "running" }] }), { now: NOW });
  assert.deepEqual([running.live, running.status, running.backend], [true, "running", "smolmachines"]);
  const stopped = classify(facts({ machines: [{ name: "bb-r-1", state: "stopped" }] }), { now: NOW });
  assert.deepEqual([stopped.live, stopped.status], [false, "orphan"]);
});

test("a live owner with nothing running yet is starting; a dead owner leaves an orphan", () => {
  const owner = { pid: 42, startedAt: "2026-05-27T17:59:00Z" };
  const starting = classify(facts({ dir: dir({ owner, ownerAlive: true }), containers: [container("bundle", "running")] }), { now: NOW });
  assert.deepEqual([starting.live, starting.status, starting.why, starting.startedAt], [true, "starting", "owner pid 42 alive", owner.startedAt]);
  const dead = classify(facts({ dir: dir({ owner, ownerAlive: false }), containers: [container("bundle", "running")] }), { now: NOW });
  assert.deepEqual([dead.live, dead.status, dead.why], [false, "orphan", "owner pid 42 gone, agent not running, plan.json unusable"]);
});

test("a running agent whose recorded owner is gone is an orphan: its start flow was killed before tearing down", () => {
  const owner = { pid: 42, startedAt: "2026-05-27T17:59:00Z" };
  const running = [container("agent", "running"), container("bundle", "running")];
  const killed = classify(facts({ dir: dir({ owner, ownerAlive: false }), containers: running }), { now: NOW });
  assert.deepEqual([killed.live, killed.status, killed.why], [false, "orphan", "owner pid 42 gone, agent left running by a start flow that died, plan.json unusable"]);
  const machine = classify(facts({ dir: dir({ owner, ownerAlive: false }), machines: [{ name: "bb-r-1", state: "running" }] }), { now: NOW });
  assert.equal(machine.live, false);
  const owned = classify(facts({ dir: dir({ owner, ownerAlive: true }), containers: running }), { now: NOW });
  assert.deepEqual([owned.live, owned.status], [true, "running"]);
});

test("a bottle kept for you (keep=true) stays yours when it stops: live, status kept, with how to resume or remove it", () => {
  const stopped = classify(facts({ dir: dir({ kept: true }), containers: [container("agent", "exited"), container("bundle", "exited")] }), { now: NOW });
  assert.deepEqual([stopped.live, stopped.status], [true, "kept"]);
  assert.equal(stopped.why, "kept (keep=true), not running: just start slug=r-1 resumes it, bb-cleanup --slug r-1 removes it");
  const justStopped = classify(facts({ dir: dir({ kept: true, mtimeMs: NOW - 1000 }) }), { now: NOW });
  assert.deepEqual([justStopped.status, justStopped.why.startsWith("kept")], ["kept", true], "kept, not 'starting', right after a change");
  const gone = classify(facts({ dir: dir({ kept: true }) }), { now: NOW });
  assert.deepEqual([gone.live, gone.status], [true, "kept"], "its containers removed (a prune), its state dir is still resumable");
  const killedResume = classify(facts({ dir: dir({ kept: true, owner: { pid: 42, startedAt: "x" }, ownerAlive: false }), containers: [container("agent", "running")] }), { now: NOW });
  assert.deepEqual([killedResume.live, killedResume.status], [true, "kept"]);
  assert.match(killedResume.why, /^kept \(keep=true\), agent left running by a start flow that died: just start slug=r-1 resumes it/);
  const running = classify(facts({ dir: dir({ kept: true }), containers: [container("agent", "running")] }), { now: NOW });
  assert.deepEqual([running.live, running.status, running.why], [true, "running", "agent container running"]);
});

test("a stopped agent container does not keep a bottle alive", () => {
  const b = classify(facts({ containers: [container("agent", "exited")] }), { now: NOW });
  assert.equal(b.live, false);
});

test("without an owner record a bottle is starting for the grace period after its newest change, then an orphan", () => {
  const fresh = facts({ dir: null, containers: [container("bundle", "running", "2026-05-27 17:59:30 +0000 UTC")] });
  assert.deepEqual([classify(fresh, { now: NOW }).status, classify(fresh, { now: NOW }).why], ["starting", "last changed 30s ago, no owner recorded yet"]);
  assert.equal(classify(fresh, { now: NOW + GRACE_MS }).status, "orphan");
  assert.equal(classify(fresh, { now: NOW, graceMs: 0 }).status, "orphan");
  const freshDir = facts({ dir: dir({ mtimeMs: NOW - 1000 }) });
  assert.equal(classify(freshDir, { now: NOW }).live, true);
  // A recorded owner that died ends the grace at once: its flow is over.
  const died = facts({ dir: dir({ mtimeMs: NOW - 1000, owner: { pid: 42, startedAt: "x" }, ownerAlive: false }) });
  assert.equal(classify(died, { now: NOW }).live, false);
});

test("a bottle with only its networks so far (no state dir here, no container yet) is starting while they are new", () => {
  const net = (createdAt: string) => ({ name: "bb-r-1-int", id: "n", role: "network-internal", createdAt });
  const fresh = facts({ dir: null, networks: [net("2026-05-27 17:59:50.5 +0000 UTC")] });
  assert.deepEqual([classify(fresh, { now: NOW }).live, classify(fresh, { now: NOW }).status], [true, "starting"]);
  assert.equal(classify(facts({ dir: null, networks: [net("2026-05-27 17:00:00 +0000 UTC")] }), { now: NOW }).live, false);
});

test("resources with no state dir are an orphan named as such, dated by their oldest container", () => {
  const b = classify(facts({ dir: null, containers: [container("bundle", "running")], networks: [{ name: "bb-r-1-int", id: "n", role: "network-internal", createdAt: "2026-05-27 17:00:00 +0000 UTC" }] }), { now: NOW });
  assert.equal(b.why, "no owner, agent not running, no state dir");
  assert.equal(b.startedAt, "2026-05-27T17:00:00.000Z");
  assert.equal(b.backend, "docker");
});

test("parseDockerTime() reads docker ps's CreatedAt text", () => {
  assert.equal(parseDockerTime("2026-05-27 18:00:00 +0200 CEST"), Date.parse("2026-05-27T16:00:00Z"));
  assert.equal(parseDockerTime("2026-05-27 18:00:00.123456 +0000 UTC"), Date.parse("2026-05-27T18:00:00Z"));
  assert.ok(Number.isNaN(parseDockerTime("yesterday")));
});

test("a bottle whose resources name another state root is live whatever they are doing: its owner and kept records are there", () => {
  const stopped = classify(facts({ dir: null, elsewhere: "/root/.local/state/bot-bottle", containers: [container("agent", "exited")] }), { now: NOW });
  assert.deepEqual([stopped.live, stopped.status], [true, "elsewhere"]);
  assert.equal(stopped.why, "a bottle of state root /root/.local/state/bot-bottle (bb-list and bb-cleanup judge it with --state-dir /root/.local/state/bot-bottle)");
  const running = classify(facts({ dir: null, elsewhere: "/other", containers: [container("agent", "running")] }), { now: NOW });
  assert.deepEqual([running.live, running.status], [true, "running"]);
});

test("a plan only prepared (no bundle, no vm, nothing on any backend, no owner) is 'prepared' with no start time, live for the grace period alone", () => {
  const plan = samplePlan();
  const prepared = facts({ dir: dir({ plan, planError: null, mtimeMs: NOW - 5000 }) });
  const b = classify(prepared, { now: NOW });
  assert.deepEqual([b.live, b.status, b.startedAt, b.why], [true, "prepared", null, "prepared 5s ago and not started, no owner recorded"]);
  assert.equal(classify(prepared, { now: NOW + GRACE_MS }).status, "orphan");
  // Under a live start flow it is that flow's bottle, starting; with networks made, being bundled by hand.
  const owned = facts({ dir: dir({ plan, planError: null, mtimeMs: NOW - 5000, owner: { pid: 42, startedAt: "2026-05-27T17:59:55Z" }, ownerAlive: true }) });
  assert.equal(classify(owned, { now: NOW }).status, "starting");
  const bundled = facts({ dir: dir({ plan, planError: null, mtimeMs: NOW - 5000 }), networks: [{ name: "bb-r-1-int", id: "n", role: "network-internal", createdAt: "2026-05-27 17:59:58 +0000 UTC" }] });
  assert.equal(classify(bundled, { now: NOW }).status, "starting");
});
