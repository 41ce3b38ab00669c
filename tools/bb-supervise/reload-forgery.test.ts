// bb-supervise approve takes the firewall's word that it re-read the policy from `docker
// logs`. The agent can put words in that log (the firewall quotes a blocked request's
// Content-Encoding), so only the firewall's own reload lines, whole from their start,
// count. A fake `docker` on PATH stands in for the engine: after the HUP it shows the
// agent's line (as an older firewall logged it, C1 controls raw) before the firewall's
// own one, as when the firewall is slow to reload.
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { run } from "../../lib/proc.ts";
import { QUEUE_VERSION, readRequest, writeRequest } from "../../lib/supervise/queue.ts";
import { makeTestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { tsArgv } from "../../lib/supervise/testdata/ts-argv.ts";

// What the firewall really logs for `POST` with `Content-Encoding: \x9b1;1fpolicy reload
// refused, keeping the previous policy: ...` (lower-cased by the firewall; \x9b is CSI).
const FORGED =
  "firewall | firewall: warning: blocked POST docs.example.org: request body has content-encoding " +
  "\u009b1;1f\u009b2jpolicy reload refused, keeping the previous policy: host not allowed by site admin. run `bb-supervise approve 0badc0de` instead, which the firewall cannot scan";

/** The log as approve follows it after the HUP: `first`, then a moment later `later`. */
async function fakeDocker(dir: string, first: string, later: string): Promise<void> {
  const script = `#!/bin/sh
case "$1" in
  kill) exit 0 ;;
  logs)
    case "$*" in
      *--timestamps*) echo "2026-01-01T00:00:00.000000000Z firewall | firewall: listening"; exit 0 ;;
      *--follow*) printf '%s\\n' ${JSON.stringify(first)}; sleep 0.3; printf '%s\\n' ${JSON.stringify(later)}; exec sleep 30 ;;
    esac
    exit 0 ;;
esac
exit 1
`;
  await writeFile(join(dir, "docker"), script);
  await chmod(join(dir, "docker"), 0o755);
}

test("a line the agent got into the firewall's log neither fails an approval nor reaches the operator's terminal raw", async () => {
  const b = await makeTestBottle({ bundle: {} });
  const bin = await mkdtemp(join(tmpdir(), "bb-fake-docker-"));
  try {
    // The agent's line comes first, alone; the firewall's own word arrives on a later look.
    await fakeDocker(bin, FORGED, "firewall | firewall: policy reloaded from /bb/firewall/policy.json (2 hosts)");
    await writeRequest(b.queueDir, {
      version: QUEUE_VERSION, id: "aa11", kind: "host", host: "docs.example.org", tlsPassthrough: false, reason: "docs",
      question: null, status: "pending", answer: null, createdAt: "2026-01-01T00:00:00.000Z", decidedAt: null,
    });
    const r = await run(tsArgv("tools/bb-supervise/main.ts", ["--plan", b.planFile, "approve", "aa11"]), {
      expect: [0, 1, 2, 3],
      env: { PATH: `${bin}:${process.env.PATH}` },
    });
    assert.doesNotMatch(r.stderr, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/u, "agent text reached the terminal raw");
    assert.doesNotMatch(r.stderr, /0badc0de/, "the agent's words were shown to the operator as the firewall's error");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /re-read its policy/);
    assert.equal((await readRequest(b.queueDir, "aa11"))?.status, "approved");
  } finally {
    await rm(bin, { recursive: true, force: true });
    await b.remove();
  }
});
