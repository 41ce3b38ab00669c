// bb-supervise approve against a real container: the firewall re-read it asks for is a
// real `docker kill --signal HUP <bundle>` (the container stands in for the bundle: its
// PID 1 records the signals it receives and answers HUP as the firewall does).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { run } from "../../lib/proc.ts";
import { QUEUE_VERSION, readRequest, writeRequest, type QueueRequest } from "../../lib/supervise/queue.ts";
import { makeTestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { tsArgv } from "../../lib/supervise/testdata/ts-argv.ts";

const SCRIPT = [
  'trap "echo usr1 >> /tmp/signals" USR1',
  'trap "echo hup >> /tmp/signals; echo \'firewall | firewall: policy reloaded from /bb/firewall/policy.json (2 hosts)\'" HUP',
  "echo ready; while :; do sleep 0.1; done",
].join("; ");

async function signalsOf(container: string): Promise<string> {
  return (await run(["docker", "exec", container, "sh", "-c", "cat /tmp/signals 2>/dev/null || true"])).stdout;
}

test("approve sends HUP to the bottle's bundle container and waits for the firewall's word, and a missing container leaves the request pending", async () => {
  const container = `bb-supervise-test-${randomBytes(4).toString("hex")}`;
  const b = await makeTestBottle({ bundle: { container } });
  const gone = await makeTestBottle({ bundle: { container: `${container}-missing` } });
  try {
    await run(["docker", "run", "-d", "--rm", "--name", container, "--label", "bot-bottle.test=1", "--network", "none", "debian:bookworm-slim", "sh", "-c", SCRIPT]);
    const pending = (id: string, host: string): QueueRequest => ({
      version: QUEUE_VERSION, id, kind: "host", host, tlsPassthrough: false, reason: "r", question: null,
      status: "pending", answer: null, createdAt: new Date().toISOString(), decidedAt: null,
    });
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
    assert.match(failed.stderr, /signalling the firewall to re-read it failed .*Cannot signal the firewall of .* \(container .*-missing\).*request bb22 stays pending/);
    assert.equal((await readRequest(gone.queueDir, "bb22"))?.status, "pending");
  } finally {
    await run(["docker", "rm", "-f", container], { expect: [0, 1] });
    await b.remove();
    await gone.remove();
  }
});
