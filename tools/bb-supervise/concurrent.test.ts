// Decisions made at the same moment, as real processes: two terminals, or a script that
// approves several requests at once. Each reads the policy and the bottle's records and
// writes them back whole, so without one decision at a time one undoes the other.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ANY_EXIT, run, start } from "../../lib/proc.ts";
import { readApprovals } from "../../lib/supervise/approvals.ts";
import { underDecisionLock } from "../../lib/supervise/lock.ts";
import { QUEUE_VERSION, readRequest, writeRequest, type QueueRequest } from "../../lib/supervise/queue.ts";
import { makeTestBottle, type TestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { tsArgv } from "../../lib/supervise/testdata/ts-argv.ts";

const pending = (id: string, host: string): QueueRequest => ({
  version: QUEUE_VERSION, id, kind: "host", host, tlsPassthrough: false, reason: "r", question: null,
  status: "pending", answer: null, createdAt: new Date().toISOString(), decidedAt: null,
});

// The test bottle has no bundle in its plan: approve changes the policy file alone (the
// firewall reads it when the bundle starts), which is the whole race.
const tool = (b: TestBottle, args: string[]) => run(tsArgv("tools/bb-supervise/main.ts", ["--plan", b.planFile, ...args]), { expect: ANY_EXIT, timeoutMs: 120_000 });

async function policyHosts(b: TestBottle): Promise<string[]> {
  return (JSON.parse(await readFile(b.policyFile, "utf8")) as { hosts: { host: string }[] }).hosts.map((h) => h.host);
}

test("twelve approves at once, each of another request, all succeed and leave every host in the policy and in the approvals record", async (t) => {
  const b = await makeTestBottle();
  t.after(() => b.remove());
  const hosts = Array.from({ length: 12 }, (_, i) => `h${i}.example.org`);
  for (const [i, host] of hosts.entries()) await writeRequest(b.queueDir, pending(`r${i}`, host));
  const results = await Promise.all(hosts.map((_, i) => tool(b, ["approve", `r${i}`])));
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await policyHosts(b)).filter((h) => h.endsWith(".example.org")).sort(), [...hosts].sort());
  assert.deepEqual((await readApprovals(b.plan.files.dir)).map((a) => a.host).sort(), [...hosts].sort());
  for (const i of hosts.keys()) assert.equal((await readRequest(b.queueDir, `r${i}`))?.status, "approved");
});

test("an approve waits while another decision holds the bottle, then acts on what that one left", async (t) => {
  const b = await makeTestBottle();
  t.after(() => b.remove());
  await writeRequest(b.queueDir, pending("bb22", "api.example.org"));
  let release!: () => void;
  const holding = underDecisionLock(b.plan.files.dir, () => new Promise<void>((r) => (release = r)));
  const child = start(tsArgv("tools/bb-supervise/main.ts", ["--plan", b.planFile, "approve", "bb22"]), { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on("close", r));
  try {
    for (let i = 0; i < 600 && !/waiting for another/.test(stderr); i++) await sleep(50);
    assert.match(stderr, /waiting for another bb-supervise or bb-prepare on this bottle \(pid \d+, since /);
    await sleep(500);
    assert.equal((await readRequest(b.queueDir, "bb22"))?.status, "pending", "approve went on while the lock was held");
    assert.ok(!(await policyHosts(b)).includes("api.example.org"));
  } finally {
    release();
    await holding;
  }
  assert.equal(await exited, 0, stderr);
  assert.equal((await readRequest(b.queueDir, "bb22"))?.status, "approved");
  assert.ok((await policyHosts(b)).includes("api.example.org"));
  assert.ok(!existsSync(join(b.plan.files.dir, "supervise.lock")), "the lock was left behind");
});
