// bb-supervise approve against a real container: the firewall re-read it asks for is a
// real `docker kill --signal HUP <bundle>` (the container stands in for the bundle: its
// PID 1 records the signals it receives and answers HUP as the firewall does).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { labelArgs, testLabels } from "../../lib/docker/labels.ts";
import { ANY_EXIT, run } from "../../lib/proc.ts";
import { reloadOwed } from "../../lib/supervise/approvals.ts";
import { QUEUE_VERSION, readRequest, writeRequest, type QueueRequest } from "../../lib/supervise/queue.ts";
import { makeTestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { tsArgv } from "../../lib/supervise/testdata/ts-argv.ts";
import { hangingEngine, realEngineSocket } from "../../tests/support/hanging-engine.ts";
import { until } from "../../tests/support/until.ts";

const SCRIPT = [
  'trap "echo usr1 >> /tmp/signals" USR1',
  'trap "echo hup >> /tmp/signals; echo \'firewall | firewall: policy reloaded from /bb/firewall/policy.json (2 hosts)\'" HUP',
  "echo ready; while :; do sleep 0.1; done",
].join("; ");

async function signalsOf(container: string): Promise<string> {
  return (await run(["docker", "exec", container, "sh", "-c", "cat /tmp/signals 2>/dev/null || true"])).stdout;
}

/** A host request waiting for the operator. */
const pending = (id: string, host: string): QueueRequest => ({
  version: QUEUE_VERSION, id, kind: "host", host, tlsPassthrough: false, reason: "r", question: null,
  status: "pending", answer: null, createdAt: new Date().toISOString(), decidedAt: null,
});

test("approve sends HUP to the bottle's bundle container and waits for the firewall's word, and a missing container leaves the request pending", async () => {
  const container = `bb-supervise-test-${randomBytes(4).toString("hex")}`;
  const b = await makeTestBottle({ bundle: { container } });
  const gone = await makeTestBottle({ bundle: { container: `${container}-missing` } });
  try {
    await run(["docker", "run", "-d", "--rm", "--name", container, ...labelArgs(testLabels()), "--network", "none", "debian:bookworm-slim", "sh", "-c", SCRIPT]);
    // A PID 1 drops a signal it has no trap for yet: approve's HUP comes once the traps are set.
    await until("the stand-in's traps set", async () => /^ready$/m.test((await run(["docker", "logs", container])).stdout), { everyMs: 100 });
    await writeRequest(b.queueDir, pending("aa11", "docs.example.org"));
    await writeRequest(gone.queueDir, pending("bb22", "docs.example.org"));

    const ok = await run(tsArgv("tools/bb-supervise/main.ts", ["--plan", b.planFile, "approve", "aa11"]));
    assert.match(ok.stderr, new RegExp(`the firewall of ${b.slug} re-read its policy \\(container ${container}; open connections stay\\)`));
    let seen = "";
    for (let i = 0; i < 30 && !seen; i++) {
      seen = await signalsOf(container);
      if (!seen) await sleep(100);
    }
    assert.equal(seen, "hup\n", "a live re-read, no restart");
    assert.equal((await readRequest(b.queueDir, "aa11"))?.status, "approved");

    const failed = await run(tsArgv("tools/bb-supervise/main.ts", ["--plan", gone.planFile, "approve", "bb22"]), { expect: [1] });
    assert.match(failed.stderr, /^bb-supervise: error: Request bb22 stays pending; docs\.example\.org is out of .*policy\.json again: signalling the firewall to re-read its policy with docs\.example\.org failed \(Cannot signal the firewall of .* \(container .*-missing\)/m);
    assert.equal((await readRequest(gone.queueDir, "bb22"))?.status, "pending");
    assert.doesNotMatch(await readFile(gone.policyFile, "utf8"), /docs\.example\.org/);
  } finally {
    await run(["docker", "rm", "-f", container], { expect: [0, 1] });
    await b.remove();
    await gone.remove();
  }
});

test("approve against a Docker engine that stops answering gives up after BB_DOCKER_TIMEOUT with exit 124 naming the call, and the request stays pending", async (t) => {
  const b = await makeTestBottle({ bundle: { container: `bb-supervise-test-${randomBytes(4).toString("hex")}` } });
  t.after(() => b.remove());
  await writeRequest(b.queueDir, pending("cc33", "docs.example.org"));
  // Nothing answered at all (the first call, the log read, waits); then only the signal held.
  const cases = [
    { engine: await hangingEngine(t), call: /docker logs --timestamps --tail 1 / },
    { engine: await hangingEngine(t, { via: realEngineSocket(), hangOn: /^POST \S+\/containers\/[^/]+\/kill/ }), call: /docker kill --signal HUP / },
  ];
  for (const { engine, call } of cases) {
    const started = Date.now();
    const r = await run(tsArgv("tools/bb-supervise/main.ts", ["--plan", b.planFile, "approve", "cc33"]), {
      expect: ANY_EXIT, env: { DOCKER_HOST: engine.host, BB_DOCKER_TIMEOUT: "1" }, timeoutMs: 60_000,
    });
    assert.equal(r.code, 124, r.stderr);
    assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
    assert.match(r.stderr, /^bb-supervise: error: Request cc33 stays pending; docs\.example\.org is out of .*policy\.json again: the firewall may have re-read the policy with it before the engine stopped answering: Cannot (read the log of|signal the firewall of .*) \(?container [^:]*: the Docker engine did not answer `docker /m);
    assert.match(r.stderr, call);
    assert.match(r.stderr, /^Once the engine answers, approve it again, or deny it \(which then has the firewall re-read the policy without it\)$/m);
    assert.equal((await readRequest(b.queueDir, "cc33"))?.status, "pending");
    assert.doesNotMatch(await readFile(b.policyFile, "utf8"), /docs\.example\.org/);
    assert.equal(await engine.clientsClosed(), 0, "a docker CLI was left connected to the engine");
  }
  // The engine answers again: the deny asks the firewall to re-read the policy, and a
  // bundle that is not running (this bottle's never was) has nothing live to change.
  assert.equal(reloadOwed(b.plan.files.dir), true);
  const denied = await run(tsArgv("tools/bb-supervise/main.ts", ["--plan", b.planFile, "deny", "cc33"]));
  assert.match(denied.stderr, /denied cc33/);
  assert.equal((await readRequest(b.queueDir, "cc33"))?.status, "denied");
  assert.equal(reloadOwed(b.plan.files.dir), false);
});
