// An approve and a deny of one request at once, against a real engine: the approve holds
// while its firewall re-reads the policy (a stand-in bundle whose PID 1 answers HUP the
// way the firewall does, a second late), and the deny comes in that second.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { labelArgs, testLabels } from "../../lib/docker/labels.ts";
import { ANY_EXIT, run } from "../../lib/proc.ts";
import { readApprovals } from "../../lib/supervise/approvals.ts";
import { QUEUE_VERSION, readRequest, writeRequest } from "../../lib/supervise/queue.ts";
import { makeTestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { tsArgv } from "../../lib/supervise/testdata/ts-argv.ts";
import { until } from "../../tests/support/until.ts";

const SLOW_FIREWALL = `trap 'sleep 1.5; echo "firewall | firewall: policy reloaded from /bb/firewall/policy.json (2 hosts)"' HUP; echo ready; while :; do sleep 0.05; done`;

test("a deny while an approve of the same request waits for the firewall is told it was approved already; the policy and the records agree", async (t) => {
  const container = `bb-supervise-test-${randomBytes(4).toString("hex")}`;
  const b = await makeTestBottle({ bundle: { container } });
  t.after(async () => {
    await run(["docker", "rm", "-f", container], { expect: ANY_EXIT });
    await b.remove();
  });
  await run(["docker", "run", "-d", "--name", container, ...labelArgs(testLabels()), "--network", "none", "debian:bookworm-slim", "sh", "-c", SLOW_FIREWALL]);
  // A PID 1 drops a signal it has no trap for yet: approve's HUP comes once the trap is set.
  await until("the stand-in's trap set", async () => /^ready$/m.test((await run(["docker", "logs", container])).stdout), { everyMs: 100 });
  await writeRequest(b.queueDir, {
    version: QUEUE_VERSION, id: "aa11", kind: "host", host: "docs.example.org", tlsPassthrough: false, reason: "r", question: null,
    status: "pending", answer: null, createdAt: new Date().toISOString(), decidedAt: null,
  });
  const tool = (args: string[]) => run(tsArgv("tools/bb-supervise/main.ts", ["--plan", b.planFile, ...args]), { expect: ANY_EXIT, timeoutMs: 120_000 });
  const approving = tool(["approve", "aa11"]);
  // The host is in the policy file once approve is on its way to the firewall.
  await until("approve's host in the policy file", async () => (await readFile(b.policyFile, "utf8")).includes("docs.example.org"), { timeoutMs: 60_000, everyMs: 25 });
  const deny = await tool(["deny", "aa11", "no"]);
  const approve = await approving;
  assert.equal(approve.code, 0, approve.stderr);
  assert.notEqual(deny.code, 0, `the deny said it denied aa11, which approve then approved:\n${deny.stderr}`);
  assert.match(deny.stderr, /Request aa11 was already approved/);
  assert.equal((await readRequest(b.queueDir, "aa11"))?.status, "approved");
  assert.match(await readFile(b.policyFile, "utf8"), /docs\.example\.org/);
  assert.deepEqual((await readApprovals(b.plan.files.dir)).map((a) => a.host), ["docs.example.org"]);
});
