// git-gate judges a ref by what upstream holds now and by what the gate itself did to it:
// a branch deleted through the gate and created again, a branch upstream dropped that the
// mirror still holds, a symbolic ref upstream whose target does not exist. Real process,
// real git, a local upstream (file://, or a git:// server speaking only protocol v0).
import assert from "node:assert/strict";
import { chmod, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { deletedAfterHardening, publishUpstream, refusedPushTo, startGateFixture, type GateFixture } from "./testdata/gate.ts";

const AWS_KEY = "AKIAZ7QK3MPLW2XVR4TN";
const POLICY = { allowedRefs: ["agent/**"], protectedBranches: ["main"], protectedPaths: [".github/**"], dlp: true };

/** Fixture hooks shared by the describes below: a clean detached checkout of origin/main before each test. */
function gateUnder(opts: { v0Upstream?: boolean }) {
  const ctx = {} as { f: GateFixture };
  before(async () => {
    ctx.f = await startGateFixture({ push: POLICY, dlpDisabled: ["high_entropy"], ...opts });
  });
  after(() => ctx.f?.stop());
  beforeEach(async () => {
    await ctx.f.git(ctx.f.work, ["fetch", "-q", "--prune", "origin"]);
    await ctx.f.git(ctx.f.work, ["checkout", "-q", "--detach", "origin/main"]);
    await ctx.f.git(ctx.f.work, ["clean", "-qfdx"]);
  });
  return ctx;
}

const upstreamAt = async (f: GateFixture, ref: string) => (await f.git(f.upstream, ["rev-parse", "--verify", "-q", ref], [0, 1])).stdout.trim();

describe("git-gate remembers what it did to a ref and judges by what upstream holds now (real process, real git)", () => {
  const ctx = gateUnder({});

  it("a branch deleted through the gate and created again is judged as moved from where it was: no rewind past a protected-path change in two pushes", async () => {
    const { f } = ctx;
    const { base, hardened } = await deletedAfterHardening(f, "agent/ci");
    await refusedPushTo(
      f,
      [`${base}:refs/heads/agent/ci`],
      /\[protectedPaths\] refs\/heads\/agent\/ci: refs\/heads\/agent\/ci was deleted through git-gate at [0-9a-f]{12}, so creating it again counts as moving it from there, and this takes back [0-9a-f]{12}'s change to protected path \.github\/workflows\/ci\.yml \(matches \.github\/\*\*\); a branch under a name git-gate has not deleted may start at any published commit/,
    );
    // A new name may start at any published commit, the one before the hardening too.
    await f.git(f.work, ["push", "-q", "origin", `${base}:refs/heads/agent/ci-old`]);
    assert.equal(await upstreamAt(f, "agent/ci-old"), base);
    // Once main has the hardening, the branch comes back on top of it.
    await f.git(f.work, ["push", "-q", f.upstream, `${hardened}:refs/heads/main`]);
    await f.git(f.work, ["fetch", "-q", "origin"]);
    await f.git(f.work, ["push", "-q", "origin", `${hardened}:refs/heads/agent/ci`]);
    assert.equal(await upstreamAt(f, "agent/ci"), hardened);
  });

  it("a branch deleted through the gate is created again at its own tip, past the protected-path change upstream made on it; what it brings beyond that tip is checked", async () => {
    const { f } = ctx;
    const { hardened } = await deletedAfterHardening(f, "agent/back");
    assert.equal(await upstreamAt(f, "agent/back"), "");
    const r = await f.git(f.work, ["push", "origin", `${hardened}:refs/heads/agent/back`]);
    assert.match(r.stderr, /pushed refs\/heads\/agent\/back to upstream/);
    assert.equal(await upstreamAt(f, "agent/back"), hardened);
    // Deleted again, it comes back with the agent's own change to a protected path: refused.
    await f.git(f.work, ["push", "-q", "origin", ":refs/heads/agent/back"]);
    await f.git(f.work, ["checkout", "-q", "--detach", hardened]);
    const mine = await f.commit(".github/workflows/ci.yml", "on: push\n", "weaken ci");
    await refusedPushTo(f, [`${mine}:refs/heads/agent/back`], new RegExp(`\\[protectedPaths\\] refs/heads/agent/back: commit ${mine.slice(0, 12)} changes protected path \\.github/workflows/ci\\.yml`));
  });

  it("a branch deleted through the gate under one spelling and created under another (one ref on a case-insensitive upstream) is judged as moved from where it was", async () => {
    const { f } = ctx;
    const { base, hardened } = await deletedAfterHardening(f, "agent/Case");
    await refusedPushTo(
      f,
      [`${base}:refs/heads/agent/case`],
      /\[protectedPaths\] refs\/heads\/agent\/case: refs\/heads\/agent\/case is refs\/heads\/agent\/Case on a case-insensitive upstream, which was deleted through git-gate at [0-9a-f]{12}, so creating it again counts as moving it from there, and this takes back [0-9a-f]{12}'s change to protected path \.github\/workflows\/ci\.yml/,
    );
    // Created under the other spelling at the deleted tip: on a case-sensitive upstream the
    // first spelling is still another ref, deleted, and its record still judges it.
    await f.git(f.work, ["push", "-q", "origin", `${hardened}:refs/heads/agent/case`]);
    await refusedPushTo(f, [`${base}:refs/heads/agent/Case`], /\[protectedPaths\] refs\/heads\/agent\/Case: refs\/heads\/agent\/Case was deleted through git-gate at [0-9a-f]{12}, so creating it again/);
  });

  it("a branch deleted upstream, not through the gate, after the gate's mirror held it is judged as moved from where the mirror last held it when created again", async () => {
    const { f } = ctx;
    const base = (await f.git(f.work, ["rev-parse", "origin/main"])).stdout.trim();
    await f.git(f.work, ["push", "-q", "origin", `${base}:refs/heads/agent/gone`]);
    const hardened = await publishUpstream(f, "agent/gone", ".github/workflows/ci.yml", "on: push\njobs: {gone: {}}\n");
    // Someone deletes it upstream itself (a merged pull request's branch, say); the agent's
    // fetch lets the gate's mirror see it gone.
    await f.git(f.upstream, ["update-ref", "-d", "refs/heads/agent/gone"]);
    await f.git(f.work, ["fetch", "-q", "--prune", "origin"]);
    await refusedPushTo(
      f,
      [`${base}:refs/heads/agent/gone`],
      /\[protectedPaths\] refs\/heads\/agent\/gone: refs\/heads\/agent\/gone was deleted upstream, not through git-gate, after git-gate last held it at [0-9a-f]{12}, so creating it again counts as moving it from there, and this takes back [0-9a-f]{12}'s change to protected path \.github\/workflows\/ci\.yml/,
    );
    // At the tip the mirror last held, it comes back.
    await f.git(f.work, ["push", "-q", "origin", `${hardened}:refs/heads/agent/gone`]);
    assert.equal(await upstreamAt(f, "agent/gone"), hardened);
  });

  it("a commit only a branch upstream dropped reaches is new again: its secret is refused though the gate's mirror still holds the branch", async () => {
    const { f } = ctx;
    await secretMovedAwayDuringPush(f, "leak", async () => ["-d", "refs/heads/leak"]);
    assert.equal(await upstreamAt(f, "leak"), "", "the hook did not drop the branch upstream");
  });

  it("a tip upstream lists that the gate cannot fetch counts for nothing, and the agent and the operator's log are told which and why", async () => {
    const { f } = ctx;
    // A maintainer's branch whose new file is corrupt upstream: upstream lists the branch,
    // and its upload-pack cannot send the file, so no fetch of the branch succeeds. Its
    // receive-pack never reads the blob, so pushes still land.
    const blob = (await f.git(f.upstream, ["hash-object", "-w", "--stdin"], [0], "only upstream holds this\n")).stdout.trim();
    const base = (await f.git(f.upstream, ["ls-tree", "main"])).stdout;
    const tree = (await f.git(f.upstream, ["mktree"], [0], `${base}100644 blob ${blob}\tunreadable.txt\n`)).stdout.trim();
    const tip = (await f.git(f.upstream, ["commit-tree", tree, "-p", "main", "-m", "maintainer: unreadable"])).stdout.trim();
    await f.git(f.upstream, ["update-ref", "refs/heads/unfetchable", tip]);
    const loose = join(f.upstream, "objects", blob.slice(0, 2), blob.slice(2));
    await chmod(loose, 0o644);
    await writeFile(loose, "not a zlib stream\n");
    try {
      const logged = f.gate.waitForLog(/git-gate: warning: push to example\.com\/acme\/widget: could not fetch refs\/heads\/unfetchable from upstream example\.com\/acme\/widget/, 30_000);
      const sha = await f.commit("unheld.txt", "unheld\n");
      const r = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/unheld"]);
      assert.match(
        r.stderr,
        /git-gate: warning: could not fetch refs\/heads\/unfetchable from upstream example\.com\/acme\/widget \(the gate does not hold its tip\), so the push was checked without it: commits only it reaches count as new, not as published \(fatal: [^\n]+\)/,
      );
      await logged;
      assert.equal(await upstreamAt(f, "agent/unheld"), sha);
    } finally {
      await f.git(f.upstream, ["update-ref", "-d", "refs/heads/unfetchable"]);
      await rm(loose, { force: true });
    }
  });

  it("a tip upstream rewrites between the hook's listing and its fetch counts for nothing, and the agent and the operator's log are told which", async () => {
    const { f } = ctx;
    // Upstream rewrites refs/heads/moving (a new commit on main, never the last one's child)
    // every time the gate's git contacts it by the URL: the listing sees one tip, the fetch
    // by name gets another, so the listed tip is never held. The gate reaches upstream by
    // that URL from its hook; its mirror's fetches go through remote "origin", unaffected.
    const mirror = join(f.dir, "data", "repos", "example.com", "acme", "widget.git");
    const url = (await f.git(mirror, ["config", "remote.origin.url"])).stdout.trim();
    const wrapper = join(f.dir, "rewriting-upload-pack");
    // The hook's git runs upload-pack as "<uploadpack> '<path>'" (the path as the URL gives
    // it, ".git" left off); the quarantine it pushes from is not upstream's.
    const upstreamGit = `env -u GIT_DIR -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_AUTHOR_NAME=maintainer GIT_AUTHOR_EMAIL=m@example.test GIT_COMMITTER_NAME=maintainer GIT_COMMITTER_EMAIL=m@example.test git --git-dir="$repo"`;
    await writeFile(
      wrapper,
      `#!/bin/sh\nset -e\nrepo="$1"; [ -d "$repo.git" ] && repo="$repo.git"\ntip=$(${upstreamGit} commit-tree "main^{tree}" -p main -m "maintainer: rewrite $$ $(date +%s%N)")\n${upstreamGit} update-ref refs/heads/moving "$tip"\nexec git-upload-pack "$@"\n`,
    );
    await chmod(wrapper, 0o755);
    await f.git(mirror, ["config", `remote.${url}.uploadpack`, wrapper]);
    try {
      const logged = f.gate.waitForLog(/git-gate: warning: push to example\.com\/acme\/widget: refs\/heads\/moving moved on upstream example\.com\/acme\/widget while git-gate fetched it/, 30_000);
      const sha = await f.commit("moved.txt", "moved\n");
      const r = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/moved"]);
      assert.match(
        r.stderr,
        /git-gate: warning: refs\/heads\/moving moved on upstream example\.com\/acme\/widget while git-gate fetched it \(the gate got its new tip, not the one upstream listed\), so the push was checked without it: commits only it reaches count as new, not as published \(push again to be judged by upstream's tips as they are now\)/,
      );
      await logged;
      assert.equal(await upstreamAt(f, "agent/moved"), sha);
    } finally {
      await f.git(mirror, ["config", "--unset", `remote.${url}.uploadpack`]);
      await f.git(f.upstream, ["update-ref", "-d", "refs/heads/moving"]);
    }
  });

  it("a commit a branch upstream rewrote away is new again, though the gate has not fetched the branch's new tip: its secret is refused", async () => {
    const { f } = ctx;
    let rewritten = "";
    await secretMovedAwayDuringPush(f, "leak2", async (leaked) => {
      // The maintainer's rewrite without the secret: a commit upstream holds and the
      // gate's mirror does not.
      const tree = (await f.git(f.upstream, ["rev-parse", `${leaked}^^{tree}`])).stdout.trim();
      rewritten = (await f.git(f.upstream, ["commit-tree", tree, "-p", `${leaked}^`, "-m", "maintainer: config without the key"])).stdout.trim();
      return ["refs/heads/leak2", rewritten];
    });
    assert.equal(await upstreamAt(f, "leak2"), rewritten, "the hook did not rewrite the branch upstream");
  });
});

/**
 * A maintainer publishes a secret on `branch` by mistake (main rewound past it), and the
 * gate's mirror learns it. Upstream then moves the branch (`git update-ref` with the args
 * `move` gives) while the agent's push of the secret's commit to agent/<branch> is on its
 * way: after the gate's fetch for this session, before its hook. That push must be refused.
 */
async function secretMovedAwayDuringPush(f: GateFixture, branch: string, move: (leaked: string) => Promise<string[]>) {
  const leaked = await publishUpstream(f, "main", "config.env", `AWS_ACCESS_KEY_ID=${AWS_KEY}\n`);
  await f.git(f.work, ["push", "-q", f.upstream, `${leaked}:refs/heads/${branch}`, `${leaked}^:refs/heads/main`, "--force"]);
  await f.git(f.work, ["fetch", "-q", "origin"]);
  const hook = join(f.dir, "hooks", "pre-receive");
  const original = await readFile(hook, "utf8");
  const moved = `env -u GIT_DIR -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES git --git-dir='${f.upstream}' update-ref ${(await move(leaked)).join(" ")}\n`;
  await writeFile(hook, original.replace(/^(#!.*\n)/, `$1${moved}`));
  try {
    const r = await f.git(f.work, ["push", "origin", `${leaked}:refs/heads/agent/${branch}`], [1]);
    assert.match(r.stderr, new RegExp(`\\[dlp\\] refs/heads/agent/${branch}: commit [0-9a-f]{12} adds a secret to config\\.env: found by the aws detector`));
  } finally {
    await writeFile(hook, original);
  }
  assert.equal(await upstreamAt(f, `agent/${branch}`), "", "the secret reached upstream again");
}

/** What the agent's push through a dangling symref leaves upstream: the symref, and no target. */
async function danglingSymrefRefused(f: GateFixture) {
  await f.git(f.upstream, ["symbolic-ref", "refs/heads/agent/alias", "refs/heads/release"]);
  try {
    const listing = (await f.git(f.upstream, ["ls-remote", "--symref", "."])).stdout;
    assert.doesNotMatch(listing, /agent\/alias/, "upstream lists the dangling symref");
    await f.commit("alias.txt", "through the alias\n");
    const r = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/alias"], [1]);
    assert.match(
      r.stderr,
      /\[allowedRefs\] refs\/heads\/agent\/alias: upstream holds refs\/heads\/agent\/alias as a symbolic ref to refs\/heads\/release, which did not exist \(so upstream listed neither\), and the push created refs\/heads\/release, which the policy refuses: refs\/heads\/release is not an allowed ref/,
    );
    assert.match(r.stderr, /git-gate deleted refs\/heads\/release again/);
    assert.equal(await upstreamAt(f, "refs/heads/release"), "", "the ref made through the symref is still upstream");
    assert.equal((await f.git(f.upstream, ["symbolic-ref", "refs/heads/agent/alias"])).stdout.trim(), "refs/heads/release");
    // A symref whose target the policy allows takes the push, as that target would.
    await f.git(f.upstream, ["symbolic-ref", "refs/heads/agent/to", "refs/heads/agent/target"]);
    await f.git(f.work, ["push", "-q", "origin", "HEAD:refs/heads/agent/to"]);
    assert.equal(await upstreamAt(f, "refs/heads/agent/target"), (await f.git(f.work, ["rev-parse", "HEAD"])).stdout.trim());
  } finally {
    for (const ref of ["refs/heads/agent/alias", "refs/heads/agent/to"]) await f.git(f.upstream, ["update-ref", "--no-deref", "-d", ref]);
  }
}

describe("git-gate in front of a symbolic ref upstream whose target does not exist, over protocol v2 (real process, real git)", () => {
  const ctx = gateUnder({});
  it("a push to it cannot create a ref the policy refuses; git-gate deletes that ref again", () => danglingSymrefRefused(ctx.f));
});

describe("git-gate in front of an upstream that speaks only protocol v0 (real process, real git)", () => {
  const ctx = gateUnder({ v0Upstream: true });

  it("a push to a symbolic ref whose target does not exist cannot create a ref the policy refuses; git-gate deletes that ref again", () => danglingSymrefRefused(ctx.f));

  it("a new branch at protected main's commit is created; moving it on is judged as main too (it may be a symref to main)", async () => {
    const { f } = ctx;
    const main = (await f.git(f.work, ["rev-parse", "origin/main"])).stdout.trim();
    await f.git(f.work, ["push", "-q", "origin", `${main}:refs/heads/agent/at-main`]);
    await f.commit("next.txt", "next\n");
    await refusedPushTo(f, ["HEAD:refs/heads/agent/at-main"], /\[allowedRefs\] refs\/heads\/agent\/at-main: upstream speaks protocol v0, .* refs\/heads\/main is not an allowed ref/);
  });
});
