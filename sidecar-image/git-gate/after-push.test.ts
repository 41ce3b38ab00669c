// What git-gate tells the agent, and where the gate's refs end, when upstream took a push
// the gate cannot simply let through: upstream cannot be listed right after it, so the
// check for refs made through a symbolic ref upstream (dangling.ts) cannot run; git
// reports the push failed though upstream took it (landed.ts); or upstream keeps part of
// a push the gate refuses. Real process, real git; the local upstream's own hooks break
// its listing (a config value only upload-pack reads, so pushes to it still work), refuse
// deletes, or end its receive-pack once its refs moved (after a delete, with its listing
// mended first). The gate's mirror is read
// directly: any session through the gate would fetch it again first.
import assert from "node:assert/strict";
import { chmod, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { deletedAfterHardening, refusedPushTo, REPO, startGateFixture, type GateFixture } from "./testdata/gate.ts";

const POLICY = { allowedRefs: ["agent/**"], protectedBranches: ["main"], protectedPaths: [".github/**"], dlp: true };

const at = async (f: GateFixture, repo: string, ref: string) => (await f.git(repo, ["rev-parse", "--verify", "-q", ref], [0, 1])).stdout.trim();
const upstreamAt = (f: GateFixture, ref: string) => at(f, f.upstream, ref);
const mirror = (f: GateFixture) => join(f.dir, "data", "repos", `${REPO}.git`);

/**
 * What upstream does with a delete: takes it; refuses it; mends its listing and refuses it
 * ("refused-relisted"); or takes it, mends its listing and dies before it answers (what git
 * sees of a connection lost, or a timeout, once upstream took the delete).
 */
type Deletes = "taken" | "refused" | "refused-relisted" | "lost";

/** Run `body` with upstream's listing broken by the first push it takes, and its deletes handled as `deletes` says. */
async function withListingBrokenAfterPush(f: GateFixture, deletes: Deletes, body: () => Promise<void>) {
  const hook = async (name: string, script: string) => {
    await writeFile(join(f.upstream, "hooks", name), `#!/bin/sh\n${script}`);
    await chmod(join(f.upstream, "hooks", name), 0o755);
  };
  // ls-refs reads lsrefs.unborn and dies on a value it does not know; receive-pack never reads it.
  await hook("post-receive", "git config lsrefs.unborn broken-by-test\n");
  if (deletes === "refused" || deletes === "refused-relisted") {
    const mend = deletes === "refused-relisted" ? "git config --unset lsrefs.unborn; " : "";
    await hook("pre-receive", `while read old new ref; do case "$new" in *[!0]*) ;; *) ${mend}echo "upstream takes no deletes" >&2; exit 1 ;; esac; done\n`);
  }
  if (deletes === "lost") {
    await hook("reference-transaction", `[ "$1" = committed ] || exit 0\nwhile read old new ref; do case "$new" in *[!0]*) exit 0 ;; esac; done\ngit config --unset lsrefs.unborn\nkill -9 "$PPID"\n`);
  }
  try {
    await body();
    const [expected, what] = deletes === "lost" || deletes === "refused-relisted" ? ["", `upstream's ${deletes === "lost" ? "reference-transaction" : "pre-receive"} hook did not mend its listing`] : ["broken-by-test", "upstream's post-receive hook did not run"];
    assert.equal((await f.git(f.upstream, ["config", "lsrefs.unborn"], [0, 1])).stdout.trim(), expected, what);
  } finally {
    for (const name of ["post-receive", "pre-receive", "reference-transaction"]) await rm(join(f.upstream, "hooks", name), { force: true });
    await f.git(f.upstream, ["config", "--unset", "lsrefs.unborn"], [0, 5]);
  }
}

describe("git-gate when upstream took a push it cannot simply let through (real process, real git)", () => {
  let f: GateFixture;
  before(async () => {
    f = await startGateFixture({ push: POLICY });
  });
  after(() => f?.stop());
  beforeEach(async () => {
    await f.git(f.work, ["fetch", "-q", "--prune", "origin"]);
    await f.git(f.work, ["checkout", "-q", "--detach", "origin/main"]);
  });

  it("an update of an existing branch is reported as pushed: it creates no ref, so there was nothing to check", async () => {
    await f.git(f.work, ["push", "-q", "origin", "HEAD:refs/heads/agent/moved"]);
    const next = await f.commit("moved.txt", "moved\n");
    await withListingBrokenAfterPush(f, "taken", async () => {
      const r = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/moved"]);
      assert.match(r.stderr, /git-gate: pushed refs\/heads\/agent\/moved to upstream/);
      assert.doesNotMatch(r.stderr, /warning|could not/);
    });
    assert.equal(await upstreamAt(f, "agent/moved"), next);
  });

  it("a new branch that upstream took and git-gate could neither check nor delete again is reported as pushed, with a warning naming what was not checked", async () => {
    const sha = await f.commit("landed.txt", "landed\n");
    // The operator is told too, in the gate's log: the agent is the one the check is for.
    const logged = f.gate.waitForLog(
      /git-gate: warning: push to example\.com\/acme\/widget: refs\/heads\/agent\/landed stands upstream unchecked: git-gate could not list upstream's refs after the push, so it could not check that creating it made no other ref through a symbolic ref upstream, nor could it delete it again; check what refs\/heads\/agent\/landed is upstream/,
      30_000,
    );
    await withListingBrokenAfterPush(f, "refused", async () => {
      const r = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/landed"]);
      assert.match(
        r.stderr,
        /git-gate: warning: upstream took the push to example\.com\/acme\/widget, but git-gate could not list upstream's refs after it, so it could not check that creating refs\/heads\/agent\/landed made no other ref through a symbolic ref upstream whose target did not exist; nor could it delete refs\/heads\/agent\/landed again: ask upstream's maintainers to check what refs\/heads\/agent\/landed is upstream/,
      );
      assert.match(r.stderr, /lsrefs\.unborn/, "the reason the listing failed is not shown");
      assert.doesNotMatch(r.stderr, /packet:/, "git's packet trace reached the agent");
      assert.match(r.stderr, /upstream takes no deletes/, "the reason the delete failed is not shown");
      assert.match(r.stderr, /git-gate: pushed refs\/heads\/agent\/landed to upstream/);
      assert.match(r.stderr, /\* \[new branch\]\s+HEAD -> agent\/landed/);
    });
    await logged;
    assert.equal(await upstreamAt(f, "agent/landed"), sha);
    // The gate holds what upstream holds: a push on top is judged from there.
    await f.commit("landed.txt", "landed twice\n");
    await f.git(f.work, ["push", "-q", "origin", "HEAD:refs/heads/agent/landed"]);
  });

  it("a new branch git-gate could not check nor delete again is checked by the listing upstream gave after that delete failed, and stands checked: no warning of a ref unchecked", async () => {
    const sha = await f.commit("relisted.txt", "relisted\n");
    await withListingBrokenAfterPush(f, "refused-relisted", async () => {
      const r = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/relisted"]);
      assert.match(r.stderr, /nor could it delete refs\/heads\/agent\/relisted again, but it could list upstream's refs after that, so it checks the push by that listing:/);
      assert.match(r.stderr, /upstream takes no deletes/, "the reason the delete failed is not shown");
      assert.match(r.stderr, /git-gate: pushed refs\/heads\/agent\/relisted to upstream/);
      assert.doesNotMatch(r.stderr, /unchecked|warning/);
    });
    assert.equal(await upstreamAt(f, "agent/relisted"), sha);
    assert.equal(await at(f, mirror(f), "refs/heads/agent/relisted"), sha);
    assert.doesNotMatch(f.gate.stderr(), /agent\/relisted stands upstream unchecked/);
  });

  it("a ref made through a symbolic ref upstream, which git-gate could not check after the push nor delete again, is found by the listing after that failed delete: refused, and told to the operator as standing", async () => {
    await f.git(f.upstream, ["symbolic-ref", "refs/heads/agent/relisted-alias", "refs/heads/relisted-release"]);
    const logged = f.gate.waitForLog(/git-gate: warning: push to example\.com\/acme\/widget: refs\/heads\/relisted-release stands upstream though the policy refuses it: the push created it through a symbolic ref upstream, and git-gate could not delete it again; delete it upstream/, 30_000);
    try {
      await f.commit("relisted-alias.txt", "through the alias\n");
      await withListingBrokenAfterPush(f, "refused-relisted", async () => {
        const r = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/relisted-alias"], [1]);
        assert.match(r.stderr, /so it checks the push by that listing:/);
        assert.match(
          r.stderr,
          /\[allowedRefs\] refs\/heads\/agent\/relisted-alias: upstream holds refs\/heads\/agent\/relisted-alias as a symbolic ref to refs\/heads\/relisted-release, which did not exist \(so upstream listed neither\), and the push created refs\/heads\/relisted-release, which the policy refuses/,
        );
        assert.match(r.stderr, /git-gate could not delete refs\/heads\/relisted-release again: tell upstream's maintainers/);
        assert.doesNotMatch(r.stderr, /unchecked/);
      });
      await logged;
    } finally {
      await f.git(f.upstream, ["update-ref", "--no-deref", "-d", "refs/heads/agent/relisted-alias"]);
      await f.git(f.upstream, ["update-ref", "-d", "refs/heads/relisted-release"], [0, 1]);
    }
  });

  it("a new branch git-gate could not check is deleted again when upstream takes that: a symbolic ref upstream whose target did not exist leaves no refused ref behind", async () => {
    await f.git(f.upstream, ["symbolic-ref", "refs/heads/agent/alias", "refs/heads/release"]);
    try {
      await f.commit("alias.txt", "through the alias\n");
      await withListingBrokenAfterPush(f, "taken", async () => {
        const r = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/alias"], [1]);
        assert.match(
          r.stderr,
          /git-gate: upstream took the push to example\.com\/acme\/widget, but git-gate could not list upstream's refs after it, so it could not check that creating refs\/heads\/agent\/alias made no other ref through a symbolic ref upstream whose target did not exist; git-gate deleted refs\/heads\/agent\/alias again \(push again\)/,
        );
      });
      assert.equal(await upstreamAt(f, "refs/heads/release"), "", "the ref made through the symref is still upstream");
    } finally {
      await f.git(f.upstream, ["update-ref", "--no-deref", "-d", "refs/heads/agent/alias"]);
    }
  });

  it("a new branch git-gate could not check whose delete again git reported as failed, though upstream took it, is refused as deleted again: the gate does not hold what upstream does not", async () => {
    await f.commit("undone.txt", "undone\n");
    await withListingBrokenAfterPush(f, "lost", async () => {
      const r = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/undone"], [0, 1]);
      assert.equal(r.code, 1, `the push stands in the gate though upstream deleted it again:\n${r.stderr}`);
      assert.match(r.stderr, /could not check that creating refs\/heads\/agent\/undone made no other ref through a symbolic ref upstream whose target did not exist; git-gate deleted refs\/heads\/agent\/undone again \(push again\)/);
      assert.match(r.stderr, /git-gate: {3}git reported deleting refs\/heads\/agent\/undone again as failed, but upstream no longer holds it:/);
      assert.doesNotMatch(r.stderr, /stands upstream|pushed refs\/heads\/agent\/undone/);
    });
    assert.equal(await upstreamAt(f, "agent/undone"), "", "upstream did not take the delete: the test's hook did not work as meant");
    assert.equal(await at(f, mirror(f), "refs/heads/agent/undone"), "", "the gate holds a branch upstream does not");
  });

  it("a branch deleted through the gate whose new create was deleted again unchecked is still judged as moved from where it was deleted", async () => {
    const { base, hardened } = await deletedAfterHardening(f, "agent/ci");
    await withListingBrokenAfterPush(f, "taken", async () => {
      const r = await f.git(f.work, ["push", "origin", `${hardened}:refs/heads/agent/ci`], [1]);
      assert.match(r.stderr, /git-gate deleted refs\/heads\/agent\/ci again \(push again\)/);
    });
    assert.equal(await upstreamAt(f, "agent/ci"), "");
    await refusedPushTo(f, [`${base}:refs/heads/agent/ci`], /\[protectedPaths\] refs\/heads\/agent\/ci: refs\/heads\/agent\/ci was deleted through git-gate at [0-9a-f]{12}, so creating it again counts as moving it from there/);
  });

  it("a ref made through a symbolic ref upstream that git-gate cannot delete again is told to the operator in the gate's log, not to the agent alone, and the agent sees git's reason", async () => {
    await f.git(f.upstream, ["symbolic-ref", "refs/heads/agent/stuck", "refs/heads/stuck-release"]);
    const hook = join(f.upstream, "hooks", "pre-receive");
    await writeFile(hook, `#!/bin/sh\nwhile read old new ref; do case "$new" in *[!0]*) ;; *) echo "upstream takes no deletes" >&2; exit 1 ;; esac; done\n`);
    await chmod(hook, 0o755);
    try {
      await f.commit("stuck.txt", "stuck\n");
      const logged = f.gate.waitForLog(
        /git-gate: warning: push to example\.com\/acme\/widget: refs\/heads\/stuck-release stands upstream though the policy refuses it: the push created it through a symbolic ref upstream, and git-gate could not delete it again; delete it upstream/,
        30_000,
      );
      const r = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/stuck"], [1]);
      assert.match(r.stderr, /git-gate could not delete refs\/heads\/stuck-release again: tell upstream's maintainers/);
      assert.match(r.stderr, /git-gate: {3}Cannot delete refs\/heads\/stuck-release again: [^\n]*\n(?:remote: git-gate: {3}[^\n]*\n)*?remote: git-gate: {3}[^\n]*upstream takes no deletes/);
      await logged;
    } finally {
      await rm(hook, { force: true });
      await f.git(f.upstream, ["update-ref", "--no-deref", "-d", "refs/heads/agent/stuck"]);
      await f.git(f.upstream, ["update-ref", "-d", "refs/heads/stuck-release"], [0, 1]);
    }
  });

  it("a ref made through a symbolic ref upstream whose delete again git reported as failed, though upstream took it, is reported as deleted again, not as standing, with what git said", async () => {
    await f.git(f.upstream, ["symbolic-ref", "refs/heads/agent/lost-alias", "refs/heads/lost-release"]);
    const hook = join(f.upstream, "hooks", "reference-transaction");
    // Upstream dies once a delete is in, before it answers.
    await writeFile(hook, `#!/bin/sh\n[ "$1" = committed ] || exit 0\nwhile read old new ref; do case "$new" in *[!0]*) exit 0 ;; esac; done\nkill -9 "$PPID"\n`);
    await chmod(hook, 0o755);
    try {
      await f.commit("lost-alias.txt", "through the alias\n");
      const r = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/lost-alias"], [1]);
      assert.match(r.stderr, /created a ref through a symbolic ref upstream; git-gate deleted refs\/heads\/lost-release again:/);
      assert.doesNotMatch(r.stderr, /could not delete/);
      assert.match(r.stderr, /git-gate: {3}git reported deleting refs\/heads\/lost-release again as failed, but upstream no longer holds it: *\nremote: git-gate: {5}\S/);
      assert.equal(await at(f, f.upstream, "refs/heads/lost-release"), "", "upstream holds the ref made through the symref");
      assert.doesNotMatch(f.gate.stderr(), /lost-release stands upstream/);
    } finally {
      await rm(hook, { force: true });
      await f.git(f.upstream, ["update-ref", "--no-deref", "-d", "refs/heads/agent/lost-alias"]);
      await f.git(f.upstream, ["update-ref", "-d", "refs/heads/lost-release"], [0, 1]);
    }
  });

  it("a push upstream took but whose connection was lost before upstream answered is reported as pushed, and the gate moves with it", async () => {
    const sha = await f.commit("lost.txt", "lost answer\n");
    const hook = join(f.upstream, "hooks", "reference-transaction");
    // Upstream's receive-pack dies once its refs are in, before it reports: what git
    // sees of a connection lost at that moment.
    await writeFile(hook, '#!/bin/sh\n[ "$1" = committed ] && kill -9 "$PPID"\nexit 0\n');
    await chmod(hook, 0o755);
    let r;
    try {
      r = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/lost-a", "HEAD:refs/heads/agent/lost-b"], [0, 1]);
    } finally {
      await rm(hook, { force: true });
    }
    assert.equal(await at(f, f.upstream, "refs/heads/agent/lost-a"), sha, "upstream did not take the push: the test's hook did not work as meant");
    assert.equal(await at(f, f.upstream, "refs/heads/agent/lost-b"), sha);
    assert.equal(r.code, 0, `the push was refused though upstream took it:\n${r.stderr}`);
    assert.match(r.stderr, /git-gate: git reported the push to example\.com\/acme\/widget as failed, but upstream holds refs\/heads\/agent\/lost-a, refs\/heads\/agent\/lost-b as pushed/);
    assert.match(r.stderr, /git-gate: pushed refs\/heads\/agent\/lost-a, refs\/heads\/agent\/lost-b to upstream/);
    assert.equal(await at(f, mirror(f), "refs/heads/agent/lost-a"), sha);
    assert.equal(await at(f, mirror(f), "refs/heads/agent/lost-b"), sha);
  });

  it("a push refused after upstream kept part of it says which refs upstream kept, and the gate's mirror holds them as upstream does", async () => {
    await f.git(f.upstream, ["symbolic-ref", "refs/heads/agent/alias", "refs/heads/release"]);
    try {
      const sha = await f.commit("kept.txt", "kept\n");
      const r = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/alias", "HEAD:refs/heads/agent/kept"], [1]);
      assert.match(r.stderr, /created a ref through a symbolic ref upstream; git-gate deleted refs\/heads\/release again/);
      assert.match(r.stderr, /git-gate: {3}upstream keeps refs\/heads\/agent\/kept as pushed; git-gate's mirror now holds what upstream holds \(fetch to see it\)/);
      assert.match(r.stderr, /git-gate: {3}upstream does not hold refs\/heads\/agent\/alias as pushed/);
      assert.equal(await at(f, f.upstream, "refs/heads/agent/kept"), sha);
      assert.equal(await at(f, f.upstream, "refs/heads/release"), "");
      assert.equal(await at(f, mirror(f), "refs/heads/agent/kept"), sha, "the gate's mirror is behind upstream");
      assert.equal(await at(f, mirror(f), "refs/heads/release"), "");
    } finally {
      await f.git(f.upstream, ["update-ref", "--no-deref", "-d", "refs/heads/agent/alias"]);
    }
  });
});
