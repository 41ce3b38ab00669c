// A session's sync (git fetch --prune into the gate's mirror) while another session's push
// is between its forward to upstream and receive-pack's update of the gate's refs: the
// sync would fetch the pushed refs into the mirror first, and receive-pack's own update,
// which expects each ref at its old value, would then fail a push that landed upstream.
// Real process, real git; upstream's post-receive hook holds the forward open, after
// upstream took it, until the test lets it go (FIFOs, each wait bounded by `timeout`).
import assert from "node:assert/strict";
import { chmod, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { run } from "../../lib/proc.ts";
import { REPO, startGateFixture, type GateFixture } from "./testdata/gate.ts";

let f: GateFixture;
before(async () => {
  f = await startGateFixture({ push: { allowedRefs: ["agent/**"], protectedBranches: ["main"], protectedPaths: [], dlp: true } });
});
after(() => f?.stop());

test("a fetch session that comes while a push is being forwarded waits for the push to end: the push that landed upstream is reported as landed, and the gate holds it", async () => {
  const took = join(f.dir, "upstream-took");
  const release = join(f.dir, "upstream-release");
  await run(["mkfifo", took, release]);
  const hook = join(f.upstream, "hooks", "post-receive");
  await writeFile(hook, `#!/bin/sh\ntimeout 60 sh -c 'echo took > "$1"' - '${took}'\ntimeout 60 cat '${release}' >/dev/null\nexit 0\n`);
  await chmod(hook, 0o755);
  try {
    const sha = await f.commit("race.txt", "race\n");
    const push = f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/race"], [0, 1]);
    // Upstream holds agent/race now; the gate's forward is held open.
    await run(["timeout", "60", "cat", took]);
    const waiting = f.gate.waitForLog(/fetch example\.com\/acme\/widget from \S+ waits for the push in progress to it to end/, 30_000);
    const listed = f.git(f.dir, ["ls-remote", f.url(REPO), "refs/heads/agent/race"]);
    // Either the other session's sync ran (and the session ended), or it waits for the push.
    await Promise.race([listed, waiting]);
    waiting.catch(() => {});
    await run(["timeout", "60", "sh", "-c", 'echo go > "$1"', "-", release]);
    const r = await push;
    assert.equal(r.code, 0, `the push was refused though upstream took it:\n${r.stderr}`);
    assert.match(r.stderr, /git-gate: pushed refs\/heads\/agent\/race to upstream example\.com\/acme\/widget/);
    assert.doesNotMatch(r.stderr, /failed to update ref|cannot lock ref/);
    assert.equal((await listed).stdout.trim(), `${sha}\trefs/heads/agent/race`, "the other session was not served what upstream holds");
    const mirror = join(f.dir, "data", "repos", `${REPO}.git`);
    assert.equal((await f.git(mirror, ["rev-parse", "refs/heads/agent/race"])).stdout.trim(), sha);
  } finally {
    await rm(hook, { force: true });
  }
});
