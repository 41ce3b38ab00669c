import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir, writeTree } from "../../tests/support/tmp.ts";
import { readStateDirs } from "./collect.ts";
import { executeRemovals, removeStateDir, type Removal, type Remover } from "./remove.ts";

const bottle: Removal = {
  slug: "s-1",
  backend: "docker",
  agent: "shell",
  live: false,
  why: "owner pid 1 gone",
  machines: [],
  containers: [
    { name: "bb-s-1-agent", id: "c-agent", role: "agent", running: true },
    { name: "bb-s-1-bundle", id: "c-bundle", role: "bundle", running: true },
  ],
  networks: [{ name: "bb-s-1-egress", id: "n-egress" }, { name: "bb-s-1-int", id: "n-int" }],
  volumes: [{ name: "bb-s-1-git-gate" }],
  stateDir: "/state/bottles/s-1",
};

/** Records each call; `fail` names what throws. */
function recorder(fail: string[] = []) {
  const calls: string[] = [];
  const op = (kind: string) => async (name: string) => {
    calls.push(`${kind} ${name}`);
    if (fail.includes(name)) throw new Error(`${name}: engine said no`);
  };
  const remover: Remover = { stopMachine: op("stop"), deleteMachine: op("delete"), removeContainer: op("rm"), removeNetwork: op("network rm"), removeVolume: op("volume rm"), removeDir: op("rm -r") };
  return { calls, remover };
}

test("a bottle goes containers first, then networks (each by the ID the scan found) and its volume, then its state dir", async () => {
  const { calls, remover } = recorder();
  const results = await executeRemovals([bottle], remover);
  assert.ok(results.every((r) => r.ok));
  assert.deepEqual(results.map((r) => r.name).slice(0, 5).sort(), ["bb-s-1-agent", "bb-s-1-bundle", "bb-s-1-egress", "bb-s-1-git-gate", "bb-s-1-int"]);
  assert.deepEqual(calls.slice(0, 2).sort(), ["rm c-agent", "rm c-bundle"]);
  assert.deepEqual(calls.slice(2, 5).sort(), ["network rm n-egress", "network rm n-int", "volume rm bb-s-1-git-gate"]);
  assert.deepEqual(calls.slice(5), ["rm -r /state/bottles/s-1"]);
});

test("the state dir stays while anything else of the bottle could not be removed; the rest is still tried", async () => {
  const { calls, remover } = recorder(["c-agent"]);
  const results = await executeRemovals([bottle], remover);
  assert.deepEqual(results.filter((r) => !r.ok).map((r) => `${r.kind} ${r.name}`), ["container bb-s-1-agent", "state dir /state/bottles/s-1"]);
  assert.match(results.find((r) => r.kind === "state dir")!.error!, /kept while 1 other resource\(s\) of the bottle remain/);
  assert.ok(calls.includes("rm c-bundle") && calls.includes("network rm n-int"));
  assert.ok(!calls.includes("rm -r /state/bottles/s-1"));
});

test("with recheck, a bottle found live before it goes is left whole, and one found live before its state dir keeps it", async () => {
  const skipped: string[] = [];
  const onSkip = (r: Removal, why: string) => void skipped.push(`${r.slug}: ${why}`);
  const before = recorder();
  const untouched = await executeRemovals([bottle], before.remover, { recheck: async () => "owner pid 42 alive", onSkip });
  assert.deepEqual([untouched, before.calls, skipped], [[], [], ["s-1: owner pid 42 alive"]]);

  // A resume claims the state dir while the containers go.
  skipped.length = 0;
  const during = recorder();
  let asked = 0;
  const results = await executeRemovals([bottle], during.remover, { recheck: async () => (asked++ === 0 ? null : "owner pid 42 alive"), onSkip });
  assert.equal(asked, 2);
  assert.deepEqual(results.map((r) => r.kind).sort(), ["container", "container", "network", "network", "volume"]);
  assert.ok(!during.calls.includes("rm -r /state/bottles/s-1"));
  assert.deepEqual(skipped, ["s-1: owner pid 42 alive"]);
});

test("removeStateDir() takes a bottle's records last, so a removal cut short leaves a folder still a dead bottle's; a link it only unlinks", async (t) => {
  const root = await tempDir(t);
  const dir = join(root, "bottles/s-1");
  await writeTree(dir, { "plan.json": "{}", "owner.json": "{}", "git-gate-data/m.git/HEAD": "ref", "firewall/policy.json": "{}" });
  // Cut short deep in git-gate's mirrors.
  const cut = ((path: string, opts: object) => (path.endsWith("git-gate-data") ? Promise.reject(new Error("killed")) : rm(path, opts))) as typeof rm;
  await assert.rejects(removeStateDir(dir, cut), /killed/);
  assert.deepEqual((await readdir(dir)).sort(), ["git-gate-data", "owner.json", "plan.json"]);
  assert.deepEqual([...(await readStateDirs(root)).keys()], ["s-1"]);

  await removeStateDir(dir);
  assert.ok(!existsSync(dir));
  const elsewhere = await tempDir(t);
  await writeTree(elsewhere, { "plan.json": "{}", "keep.txt": "mine" });
  await symlink(elsewhere, dir);
  await removeStateDir(dir);
  assert.ok(!existsSync(dir));
  assert.deepEqual((await readdir(elsewhere)).sort(), ["keep.txt", "plan.json"]);
});
