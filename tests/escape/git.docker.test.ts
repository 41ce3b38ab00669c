// Escape suite, git (issue 4, properties 9 and 11), against a real Docker engine: one
// bottle declaring git.test/team/app (push policy: refs/heads/bot/* only, main protected,
// .github/** protected), the fake internet serving team/app.git with git daemon on its
// egress network. The agent uses plain git with the URLs a person would type; the
// upstream's refs are read from the fake itself.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { removeAll, startBottle, type Bottle } from "./support/bottle.ts";
import { newId } from "./support/env.ts";
import { startFakeInternet, type FakeInternet } from "./support/fake-internet.ts";

describe("escape suite: git through git-gate (docker)", () => {
  const id = newId();
  let state: string;
  let fake: FakeInternet | undefined;
  let bottle: Bottle | undefined;
  let fakeIp = "";

  before(async () => {
    state = await mkdtemp(join(tmpdir(), "bb-escape-git-"));
    fake = await startFakeInternet(id);
    const f = fake;
    bottle = await startBottle({
      stateRoot: state,
      upstreamCa: f.caFile,
      afterBundle: async ({ egressNet }) => void (fakeIp = await f.attach(egressNet)),
    });
    const clone = await bottle.sh("git clone -q https://git.test/team/app ~/app 2>&1 && git -C ~/app log --format=%s");
    assert.equal(clone.stdout, "seed\n", clone.stderr);
  });

  after(async () => {
    await fake?.removeContainer();
    await removeAll([bottle]);
    await fake?.removeRest();
    await rm(state, { recursive: true, force: true });
  });

  /** Run a git script in the clone; returns exit code and everything git printed. */
  async function gitIn(script: string): Promise<{ code: number; out: string }> {
    const r = await bottle!.sh(`cd ~/app && { ${script}; } 2>&1`);
    return { code: r.code, out: r.stdout };
  }

  it("the agent clones and fetches git.test/team/app through git-gate and pushes bot/x within policy: it lands upstream", async () => {
    const remote = await gitIn("git ls-remote --get-url origin");
    assert.equal(remote.out.trim(), "git://git-gate:9418/git.test/team/app");

    // A commit made upstream after the clone arrives with a plain fetch.
    await fake!.git(["-c", "user.name=upstream", "-c", "user.email=u@upstream.test", "commit-tree", "-m", "upstream change", "-p", "main", "main^{tree}"]).then((sha) =>
      fake!.git(["update-ref", "refs/heads/main", sha.trim()]),
    );
    const upstreamMain = (await fake!.refs())["refs/heads/main"];
    const fetched = await gitIn("git fetch -q origin && git rev-parse origin/main");
    assert.equal(fetched.code, 0, fetched.out);
    assert.equal(fetched.out.trim(), upstreamMain);

    const pushed = await gitIn("git checkout -q -b bot/x origin/main && echo x > x.txt && git add x.txt && git commit -q -m x && git push origin bot/x && git rev-parse HEAD");
    assert.equal(pushed.code, 0, pushed.out);
    assert.match(pushed.out, /pushed refs\/heads\/bot\/x to upstream git\.test\/team\/app/);
    const head = pushed.out.trim().split("\n").at(-1);
    assert.equal((await fake!.refs())["refs/heads/bot/x"], head);
  });

  it("the agent cannot push to an undeclared repo or host, nor around the gate: each push fails and upstream refs stay as they were", async () => {
    const before = await fake!.refs();
    const attempts = {
      // Rewritten to the gate, which serves only declared repos.
      undeclaredRepo: "git push https://git.test/team/other HEAD:refs/heads/bot/u1",
      // Not rewritten: goes to the firewall as HTTPS, and undeclared.test is allowed nowhere.
      undeclaredHost: "git push https://undeclared.test/team/app HEAD:refs/heads/bot/u2",
      // Straight at the upstream's git daemon, by name and by address: no route out.
      direct: "timeout 20 git push git://git.test:9418/team/app HEAD:refs/heads/bot/u3",
      directIp: `timeout 20 git push git://${fakeIp}:9418/team/app HEAD:refs/heads/bot/u4`,
    };
    // Concurrently: the direct attempts wait for timeouts. A failed push moves no local ref.
    const results = Object.fromEntries(await Promise.all(Object.entries(attempts).map(async ([name, script]) => [name, await gitIn(script)] as const)));
    for (const [name, r] of Object.entries(results)) assert.notEqual(r.code, 0, `${name}: ${r.out}`);
    assert.match(results.undeclaredRepo!.out, /repository git\.test\/team\/other is not declared for this bottle/);
    assert.match(results.undeclaredHost!.out, /403/);
    assert.deepEqual(await fake!.refs(), before);
  });

  it("the agent cannot push against the push policy: a ref outside allowed_refs, a force-push to main, a change to .github/x; each names its rule", async () => {
    const before = await fake!.refs();
    const outside = await gitIn("git checkout -q -B feature origin/main && echo f > f.txt && git add f.txt && git commit -q -m f && git push origin feature");
    const force = await gitIn("git checkout -q -B main origin/main && echo r > r.txt && git add r.txt && git commit -q --amend -m rewritten && git push --force origin main");
    const paths = await gitIn("git checkout -q -B bot/ci origin/main && mkdir -p .github && echo x > .github/x && git add .github && git commit -q -m ci && git push origin bot/ci");
    const secret = await gitIn("git checkout -q -B bot/key origin/main && echo 'id = AKIAIOSFODNN7EXAMPLE' > key.txt && git add key.txt && git commit -q -m key && git push origin bot/key");
    for (const r of [outside, force, paths, secret]) {
      assert.notEqual(r.code, 0, r.out);
      assert.match(r.out, /rejected by the bottle's push policy; nothing was sent upstream/);
    }
    assert.match(outside.out, /\[allowedRefs\] refs\/heads\/feature: refs\/heads\/feature is not an allowed ref/);
    assert.match(force.out, /\[protectedBranches\] refs\/heads\/main: force-push \(non-fast-forward\) to protected branch main is not allowed/);
    assert.match(paths.out, /\[protectedPaths\] refs\/heads\/bot\/ci: commit \w+ changes protected path \.github\/x/);
    assert.match(secret.out, /\[dlp\] refs\/heads\/bot\/key: .*AWS access key id/);
    assert.deepEqual(await fake!.refs(), before);
  });
});
