import assert from "node:assert/strict";
import { test } from "node:test";
import { executeRemovals, type Removal, type Remover } from "./remove.ts";

const bottle: Removal = {
  slug: "s-1",
  backend: "docker",
  agent: "shell",
  live: false,
  why: "owner pid 1 gone",
  machines: [],
  containers: [
    { name: "bb-s-1-agent", role: "agent", running: true },
    { name: "bb-s-1-bundle", role: "bundle", running: true },
  ],
  networks: ["bb-s-1-egress", "bb-s-1-int"],
  stateDir: "/state/bottles/s-1",
};

/** Records each call; `fail` names what throws. */
function recorder(fail: string[] = []) {
  const calls: string[] = [];
  const op = (kind: string) => async (name: string) => {
    calls.push(`${kind} ${name}`);
    if (fail.includes(name)) throw new Error(`${name}: engine said no`);
  };
  const remover: Remover = { stopMachine: op("stop"), deleteMachine: op("delete"), removeContainer: op("rm"), removeNetwork: op("network rm"), removeDir: op("rm -r") };
  return { calls, remover };
}

test("a bottle goes containers first, then networks, then its state dir", async () => {
  const { calls, remover } = recorder();
  const results = await executeRemovals([bottle], remover);
  assert.ok(results.every((r) => r.ok));
  assert.deepEqual(calls.slice(0, 2).sort(), ["rm bb-s-1-agent", "rm bb-s-1-bundle"]);
  assert.deepEqual(calls.slice(2, 4).sort(), ["network rm bb-s-1-egress", "network rm bb-s-1-int"]);
  assert.deepEqual(calls.slice(4), ["rm -r /state/bottles/s-1"]);
});

test("the state dir stays while anything else of the bottle could not be removed; the rest is still tried", async () => {
  const { calls, remover } = recorder(["bb-s-1-agent"]);
  const results = await executeRemovals([bottle], remover);
  assert.deepEqual(results.filter((r) => !r.ok).map((r) => `${r.kind} ${r.name}`), ["container bb-s-1-agent", "state dir /state/bottles/s-1"]);
  assert.match(results.find((r) => r.kind === "state dir")!.error!, /kept while 1 other resource\(s\) of the bottle remain/);
  assert.ok(calls.includes("rm bb-s-1-bundle") && calls.includes("network rm bb-s-1-int"));
  assert.ok(!calls.includes("rm -r /state/bottles/s-1"));
});
