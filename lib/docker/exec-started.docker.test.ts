// execStarted against a real engine, as seen from a host whose clock is not the engine's
// (Docker Desktop's VM drifts; a remote DOCKER_HOST has its own): an exec the engine did
// start must be found, or bb-vm would end a running session as a hung engine's.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { run } from "../proc.ts";
import { LABEL } from "./labels.ts";
import { engineClockOffset, execStarted } from "./exec-started.ts";

const name = `bbt-execstart-${randomBytes(3).toString("hex")}`;
const cmd = ["sh", "-c", `echo started-${name}`];
const what = "test";
let ranAt = 0;

before(async () => {
  const r = await run(["docker", "run", "--detach", "--name", name, "--label", `${LABEL.test}=1`, "--network", "none", "debian:bookworm-slim", "sleep", "600"]);
  assert.equal(r.code, 0, r.stderr);
  ranAt = Date.now();
  const e = await run(["docker", "exec", name, ...cmd]);
  assert.equal(e.code, 0, e.stderr);
});

after(async () => {
  await run(["docker", "rm", "--force", name]);
});

for (const skewMs of [-30_000, 0, 30_000]) {
  test(`an exec the engine started is found with our clock ${skewMs / 1000} s off the engine's`, async () => {
    const now = () => Date.now() + skewMs;
    const offsetMs = await engineClockOffset({ what }, now);
    assert.ok(Math.abs(offsetMs + skewMs) < 5_000, `offset ${offsetMs} ms for a skew of ${skewMs} ms`);
    assert.equal(await execStarted(name, cmd, { since: ranAt + skewMs, offsetMs, what, now }), true);
    // Another command line in that container never ran.
    assert.equal(await execStarted(name, ["sh", "-c", "echo never"], { since: ranAt + skewMs, offsetMs, what, now }), false);
  });
}
