// Sessions that come while a push is being forwarded, between the hook's forward to
// upstream and receive-pack's update of the gate's refs. A sync then (git fetch --prune
// into the gate's mirror) would fetch the pushed refs first, and receive-pack's own update,
// which expects each ref at its old value, would fail a push that landed upstream. So a
// fetch is served the mirror as it stands, without a sync and without waiting for the
// push, and another push waits for its turn (turns.ts), at most --turn-wait.
// Real process, real git; upstream's post-receive hook holds the forward open, after
// upstream took it, until the test lets it go (FIFOs, each wait bounded by `timeout`).
import assert from "node:assert/strict";
import { chmod, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { run } from "../../lib/proc.ts";
import { REPO, startGateFixture, type GateFixture } from "./testdata/gate.ts";

/** How long a push waits for its turn here (--turn-wait), in seconds. */
const TURN_WAIT_S = 2;

let f: GateFixture;
before(async () => {
  f = await startGateFixture({ push: { allowedRefs: ["agent/**"], protectedBranches: ["main"], protectedPaths: [], dlp: true }, args: ["--turn-wait", String(TURN_WAIT_S)] });
});
after(() => f?.stop());

const mirror = () => join(f.dir, "data", "repos", `${REPO}.git`);

/**
 * Push `ref` from the fixture's clone with upstream's post-receive hook holding the forward
 * open once upstream took it; `during` runs then. The push's result, once let go.
 */
async function pushHeldOpen(ref: string, during: () => Promise<void>) {
  const took = join(f.dir, "upstream-took");
  const release = join(f.dir, "upstream-release");
  await run(["mkfifo", took, release]);
  const hook = join(f.upstream, "hooks", "post-receive");
  await writeFile(hook, `#!/bin/sh\ntimeout 60 sh -c 'echo took > "$1"' - '${took}'\ntimeout 60 cat '${release}' >/dev/null\nexit 0\n`);
  await chmod(hook, 0o755);
  try {
    const push = f.git(f.work, ["push", "origin", `HEAD:${ref}`], [0, 1]);
    // Upstream holds the ref now; the gate's forward is held open.
    await run(["timeout", "60", "cat", took]);
    try {
      await during();
    } finally {
      await run(["timeout", "60", "sh", "-c", 'echo go > "$1"', "-", release]);
    }
    return await push;
  } finally {
    await rm(hook, { force: true });
    await rm(took, { force: true });
    await rm(release, { force: true });
  }
}

/** A push that landed: reported as pushed, no failed ref update, the gate's mirror holds it. */
async function assertLanded(r: { code: number; stderr: string }, ref: string, sha: string) {
  assert.equal(r.code, 0, `the push was refused though upstream took it:\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`git-gate: pushed ${ref.replaceAll("/", "\\/")} to upstream example\\.com\\/acme\\/widget`));
  assert.doesNotMatch(r.stderr, /failed to update ref|cannot lock ref/);
  assert.equal((await f.git(mirror(), ["rev-parse", ref])).stdout.trim(), sha);
}

test("a clone while a push is being forwarded is served the mirror as it stands at once, without waiting for the push or syncing; the push lands and the gate holds it", async () => {
  const sha = await f.commit("race.txt", "race\n");
  let served = "";
  const r = await pushHeldOpen("refs/heads/agent/race", async () => {
    const said = f.gate.waitForLog(/fetch example\.com\/acme\/widget from \S+ is served the mirror as it stands, not fetched from upstream first: a push to it is in progress/, 30_000);
    said.catch(() => {}); // awaited below, after the clone
    // Bounded well below the push's own limits: a clone that waited for the push (held
    // until this returns) would time out here.
    const clone = join(f.dir, "clone-during-push");
    await run(["git", "clone", "-q", "--mirror", f.url(REPO), clone], { env: { GIT_CONFIG_GLOBAL: join(f.dir, "gitconfig"), GIT_CONFIG_NOSYSTEM: "1", GIT_TERMINAL_PROMPT: "0" }, timeoutMs: 20_000 });
    await said;
    served = (await f.git(clone, ["for-each-ref", "--format=%(refname) %(objectname)"])).stdout;
    assert.equal(served, (await f.git(mirror(), ["for-each-ref", "--format=%(refname) %(objectname)"])).stdout, "the clone was not served the mirror's refs");
  });
  assert.doesNotMatch(served, /agent\/race/, "the clone was served the push's ref before receive-pack took it");
  assert.match(served, /^refs\/heads\/main [0-9a-f]{40}$/m);
  await assertLanded(r, "refs/heads/agent/race", sha);
  // The next fetch syncs again and sees it.
  assert.equal((await f.git(f.dir, ["ls-remote", f.url(REPO), "refs/heads/agent/race"])).stdout.trim(), `${sha}\trefs/heads/agent/race`);
});

test("a push while another push is being forwarded waits for its turn (no sync moves the mirror under the first), at most --turn-wait, then is refused with the reason; the first lands, and pushes go on after", async () => {
  const sha = await f.commit("first.txt", "first\n");
  const r = await pushHeldOpen("refs/heads/agent/first", async () => {
    const waits = f.gate.waitForLog(/push example\.com\/acme\/widget from \S+ waits for the push in progress to it to end/, 30_000);
    const second = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/second"], [128]);
    await waits;
    assert.match(second.stderr, new RegExp(`git-gate: waited ${TURN_WAIT_S}s for the push \\(or fetch from upstream\\) in progress at example\\.com/acme/widget to end; try again when it has`));
  });
  await assertLanded(r, "refs/heads/agent/first", sha);
  assert.doesNotMatch(await f.upstreamRefs(), /agent\/second/);
  // The given-up turn passed on: a push now is not held.
  const again = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/second"]);
  assert.match(again.stderr, /git-gate: pushed refs\/heads\/agent\/second to upstream/);
});
