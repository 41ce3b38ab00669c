// git-gate against an agent that tries to get around it: every push here is one an
// attacker inside the bottle would try, made with the real git client (or raw git://
// packets where the client itself would refuse), and each must leave upstream unchanged;
// every fetch of something undeclared must be refused before git runs.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import { createHash, generateKeyPairSync } from "node:crypto";
import { readFile, symlink, writeFile } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { pkt } from "./pktline.ts";
import { publishUpstream, refusedPushTo, REPO, startGateFixture, type GateFixture } from "./testdata/gate.ts";

const AWS_KEY = "AKIAZ7QK3MPLW2XVR4TN";

describe("git-gate under attack (real process, real git)", () => {
  let f: GateFixture;
  let git: GateFixture["git"];

  const refusedPush = (args: string[], ...patterns: RegExp[]) => refusedPushTo(f, args, ...patterns);

  /** Store a commit object written by hand (headers git commit cannot set). */
  async function rawCommit(text: string) {
    return (await git(f.work, ["hash-object", "-t", "commit", "-w", "--stdin"], [0], text)).stdout.trim();
  }

  before(async () => {
    f = await startGateFixture({
      push: {
        allowedRefs: ["main", "agent/**", "refs/tags/v*", "refs/notes/*"],
        protectedBranches: ["main", "agent/protected"],
        protectedPaths: [".github/**", "secrets", "deploy/**", "**/*.pem"],
        dlp: true,
      },
    });
    git = f.git;
  });

  after(() => f?.stop());

  beforeEach(async () => {
    await git(f.work, ["fetch", "-q", "--prune", "--prune-tags", "origin"]);
    await git(f.work, ["reset", "-q", "--hard", "origin/main"]);
    await git(f.work, ["clean", "-qfdx"]);
  });

  it("a secret in a binary file (a NUL byte makes git call it binary) is refused", async () => {
    await f.commit("assets/blob.bin", Buffer.concat([Buffer.from([0, 1, 2, 0]), Buffer.from(`\nkey=${AWS_KEY}\n`)]));
    await refusedPush(["HEAD:refs/heads/agent/binary"], /\[dlp\] refs\/heads\/agent\/binary: commit [0-9a-f]{12} adds a secret to assets\/blob\.bin: found by the aws detector/);
  });

  it("a secret in the author name or in an extra commit header is refused", async () => {
    await writeFile(join(f.work, "a.txt"), "a\n");
    await git(f.work, ["add", "a.txt"]);
    await git(f.work, ["commit", "-q", "-m", "innocent", `--author=${AWS_KEY} <x@example.test>`]);
    await refusedPush(["HEAD:refs/heads/agent/author"], /\[dlp\] refs\/heads\/agent\/author: commit [0-9a-f]{12} header: secret found by the aws detector/);

    const head = (await git(f.work, ["cat-file", "commit", "origin/main"])).stdout;
    const sha = await rawCommit(head.replace("\n\n", `\nx-note ${AWS_KEY}\n\n`));
    await refusedPush([`${sha}:refs/heads/agent/header`], /\[dlp\] refs\/heads\/agent\/header: commit [0-9a-f]{12} header: secret found by the aws detector/);
  });

  it("a commit that declares an encoding other than UTF-8 is refused: git would show its readers another text than the one scanned", async () => {
    const head = (await git(f.work, ["cat-file", "commit", "origin/main"])).stdout;
    // UTF-7 for "aws AKIA...": git log upstream prints the key in clear.
    const sha = await rawCommit(head.replace(/\n\n[\s\S]*$/, `\nencoding UTF-7\n\naws +AEEASwBJAEE-Z7QK3MPLW2XVR4TN\n`));
    await refusedPush([`${sha}:refs/heads/agent/encoding`], /\[commitFormat\] refs\/heads\/agent\/encoding: commit [0-9a-f]{12} declares encoding "UTF-7"/);
    const main = (await git(f.work, ["rev-parse", "origin/main"])).stdout.trim();
    const child = head.replace(/^parent .*\n/gm, "").replace(/^(tree .*\n)/, `$1parent ${main}\n`);
    const utf8 = await rawCommit(child.replace(/\n\n[\s\S]*$/, "\nencoding UTF-8\n\nplain\n"));
    const r = await git(f.work, ["push", "origin", `${utf8}:refs/heads/agent/utf8`], [0, 1]);
    assert.equal(r.code, 0, r.stderr);
  });

  it("a file of 32 MiB or more is refused by size, before its diff is read (which would take memory many times its size)", async () => {
    await f.commit("assets/big.bin", Buffer.alloc(33 * 1024 * 1024, 0x41));
    await refusedPush(["HEAD:refs/heads/agent/big"], /\[fileSize\] refs\/heads\/agent\/big: the push adds assets\/big\.bin of 33\.0 MiB; git-gate checks files under 32 MiB/);
  });

  it("a tag pointing at a blob or a tree (no commit for the scan to walk) is refused", async () => {
    const blob = (await git(f.work, ["hash-object", "-w", "--stdin"], [0], `AWS_ACCESS_KEY_ID=${AWS_KEY}\n`)).stdout.trim();
    await refusedPush([`${blob}:refs/tags/v-blob`], /refs\/tags\/v-blob: .*points at a blob/);
    const tree = (await git(f.work, ["write-tree"])).stdout.trim();
    await refusedPush([`${tree}:refs/tags/v-tree`], /refs\/tags\/v-tree: .*points at a tree/);
    await git(f.work, ["tag", "-a", "-m", "wraps a blob", "v-wrapped", blob]);
    await refusedPush(["refs/tags/v-wrapped"], /refs\/tags\/v-wrapped: .*points at a blob/);
  });

  it("a secret in an inner tag of a tag of a tag is refused", async () => {
    await git(f.work, ["tag", "-a", "-m", `inner ${AWS_KEY}`, "inner", "HEAD"]);
    await git(f.work, ["tag", "-a", "-m", "looks fine", "v-outer", "inner"]);
    await refusedPush(["refs/tags/v-outer"], /\[dlp\] refs\/tags\/v-outer: tag [0-9a-f]{12}: secret found by the aws detector/);
  });

  it("a secret in a git note is refused", async () => {
    await git(f.work, ["notes", "add", "-m", `deploy key ${AWS_KEY}`, "HEAD"]);
    await refusedPush(["refs/notes/commits"], /\[dlp\] refs\/notes\/commits: commit [0-9a-f]{12} adds a secret to [0-9a-f]{40}: found by the aws detector/);
    await git(f.work, ["update-ref", "-d", "refs/notes/commits"]);
  });

  it("a secret added and then removed in later commits of the same push is still refused", async () => {
    await f.commit("notes/todo.md", `key ${AWS_KEY}\n`);
    await f.commit("notes/todo.md", "nothing here\n");
    await refusedPush(["HEAD:refs/heads/agent/history"], /\[dlp\] refs\/heads\/agent\/history: commit [0-9a-f]{12} adds a secret to notes\/todo\.md/);
  });

  it("a merge that brings in a secret or a protected change neither parent has is refused", async () => {
    await git(f.work, ["checkout", "-q", "-b", "side"]);
    await f.commit("side.txt", "side\n");
    await git(f.work, ["checkout", "-q", "main"]);
    await git(f.work, ["merge", "-q", "--no-ff", "--no-commit", "side"]);
    await writeFile(join(f.work, "side.txt"), `side\n${AWS_KEY}\n`);
    await writeFile(join(f.work, ".github/workflows/ci.yml"), "on: push\njobs: {evil: {}}\n");
    await git(f.work, ["add", "-A"]);
    await git(f.work, ["commit", "-q", "-m", "merge side"]);
    await refusedPush(
      ["HEAD:refs/heads/agent/merge"],
      /\[dlp\] refs\/heads\/agent\/merge: commit [0-9a-f]{12} adds a secret to side\.txt/,
      /\[protectedPaths\] refs\/heads\/agent\/merge: commit [0-9a-f]{12} changes protected path \.github\/workflows\/ci\.yml/,
    );
    await git(f.work, ["branch", "-q", "-D", "side"]);
  });

  it("a merge that keeps a parent's old version of a protected path, undoing published work, is refused; a true merge of it passes", async () => {
    const commitTree = async (tree: string, ...parents: string[]) =>
      (await git(f.work, ["commit-tree", tree, ...parents.flatMap((p) => ["-p", p]), "-m", "merge"])).stdout.trim();
    const treeOf = async (rev: string) => (await git(f.work, ["rev-parse", `${rev}^{tree}`])).stdout.trim();
    const main = (await git(f.work, ["rev-parse", "HEAD"])).stdout.trim();
    // A maintainer publishes a hardened workflow upstream (not through the gate).
    const hardened = await f.commit(".github/workflows/ci.yml", "on: push\njobs: {scan: {}}\n", "harden ci");
    await git(f.work, ["push", "-q", f.upstream, "HEAD:refs/heads/hardened"]);
    await git(f.work, ["fetch", "-q", "origin"]); // the gate's mirror learns it

    // "Merging" the commit before it, keeping that commit's tree: the hardening is undone.
    const undo = await commitTree(await treeOf(main), hardened, main);
    await refusedPush([`${undo}:refs/heads/agent/undo`], /\[protectedPaths\] refs\/heads\/agent\/undo: commit [0-9a-f]{12} changes protected path \.github\/workflows\/ci\.yml/);

    // Merging a new root commit that lacks the workflow, and dropping it.
    await git(f.work, ["rm", "-q", "--cached", "-r", ".github"]);
    const bare = (await git(f.work, ["write-tree"])).stdout.trim();
    await git(f.work, ["reset", "-q"]);
    const dropped = await commitTree(bare, hardened, await commitTree(bare));
    await refusedPush([`${dropped}:refs/heads/agent/drop`], /\[protectedPaths\] refs\/heads\/agent\/drop: commit [0-9a-f]{12} changes protected path \.github\/workflows\/ci\.yml/);

    // An agent branch from before the hardening merges it for real: nothing of its own.
    await git(f.work, ["checkout", "-q", "-b", "late", main]);
    await f.commit("late.txt", "late\n");
    await git(f.work, ["merge", "-q", "--no-edit", "--no-ff", hardened]);
    await git(f.work, ["push", "-q", "origin", "HEAD:refs/heads/agent/late"]);
    await git(f.work, ["checkout", "-q", "main"]);
    await git(f.work, ["branch", "-q", "-D", "late"]);
  });

  it("a protected path spelled with other case, a trailing dot or space, an invisible character or as an NTFS short name is refused", async () => {
    for (const path of [".GitHub/workflows/ci.yml", ".github./workflows/ci.yml", "Secrets /token.txt", "secr\u200bets/token.txt", "keys/ID.PEM", "GITHUB~1/workflows/ci.yml", "SECRET~1/token.txt"]) {
      await git(f.work, ["reset", "-q", "--hard", "origin/main"]);
      await f.commit(path, "on: push\n");
      await refusedPush(["HEAD:refs/heads/agent/spelling"], /\[protectedPaths\] refs\/heads\/agent\/spelling: commit [0-9a-f]{12} changes protected path/);
    }
  });

  it("control characters in a pushed path reach the refusal (and the gate's log) escaped, never raw", async () => {
    await f.commit("secrets/\x1b[2J\x1b]0;owned\x07.txt", "x\n");
    const r = await refusedPush(["HEAD:refs/heads/agent/escape"], /changes protected path secrets\/\\x1b\[2J\\x1b\]0;owned\\x07\.txt/);
    assert.ok(!/[\x07\x1b]/.test(r.stderr), "a raw escape sequence reached the terminal");
    assert.ok(!/[\x07\x1b]/.test(f.gate.stderr()), "a raw escape sequence reached the gate's log");
  });

  it("a symlink, a file or a submodule in place of a protected folder is refused; so is moving a protected file away", async () => {
    await symlink("docs", join(f.work, "deploy"));
    await git(f.work, ["add", "deploy"]);
    await git(f.work, ["commit", "-q", "-m", "link"]);
    await refusedPush(["HEAD:refs/heads/agent/link"], /\[protectedPaths\] refs\/heads\/agent\/link: commit [0-9a-f]{12} changes protected path deploy \(matches deploy\/\*\*\)/);

    await git(f.work, ["reset", "-q", "--hard", "origin/main"]);
    const head = (await git(f.work, ["rev-parse", "HEAD"])).stdout.trim();
    await git(f.work, ["update-index", "--add", "--cacheinfo", `160000,${head},deploy`]);
    await git(f.work, ["commit", "-q", "-m", "submodule"]);
    await refusedPush(["HEAD:refs/heads/agent/gitlink"], /changes protected path deploy \(matches deploy\/\*\*\)/);

    await git(f.work, ["reset", "-q", "--hard", "origin/main"]);
    await git(f.work, ["mv", ".github/workflows/ci.yml", "ci.yml"]);
    await git(f.work, ["commit", "-q", "-m", "move"]);
    await refusedPush(["HEAD:refs/heads/agent/move"], /changes protected path \.github\/workflows\/ci\.yml/);
  });

  it("a push to a branch spelled like a protected one in another case is refused", async () => {
    const base = (await git(f.work, ["rev-parse", "HEAD"])).stdout.trim();
    await f.commit("p.txt", "1\n");
    await git(f.work, ["push", "-q", "origin", "HEAD:refs/heads/agent/protected"]);
    await git(f.work, ["reset", "-q", "--hard", base]);
    await f.commit("p.txt", "2\n");
    await refusedPush(["HEAD:refs/heads/agent/PROTECTED"], /\[protectedBranches\] refs\/heads\/agent\/PROTECTED: .*agent\/protected/);
  });

  it("a replace ref is refused, and one upstream already has does not make the checks read another commit", async () => {
    const base = (await git(f.work, ["rev-parse", "HEAD"])).stdout.trim();
    const evil = await f.commit(".github/workflows/ci.yml", `on: push\n# ${AWS_KEY}\n`);
    await git(f.work, ["reset", "-q", "--hard", base]);
    const benign = await f.commit("harmless.txt", "hello\n");
    await refusedPush([`${benign}:refs/replace/${evil}`], /\[allowedRefs\] refs\/replace\/[0-9a-f]{40}: .*is a replace ref/);

    // The same replacement written upstream by someone else reaches the gate's mirror; the
    // hook must still judge the commit that would be forwarded.
    await git(f.work, ["push", "-q", f.upstream, `${benign}:refs/heads/agent/benign`, `${benign}:refs/replace/${evil}`]);
    try {
      await refusedPush(
        [`${evil}:refs/heads/agent/evil`],
        /\[protectedPaths\] refs\/heads\/agent\/evil: commit [0-9a-f]{12} changes protected path \.github\/workflows\/ci\.yml/,
        /\[dlp\] refs\/heads\/agent\/evil: commit [0-9a-f]{12} adds a secret/,
      );
    } finally {
      await git(f.upstream, ["update-ref", "-d", `refs/replace/${evil}`]);
      await git(f.upstream, ["update-ref", "-d", "refs/heads/agent/benign"]);
    }
  });

  it("a commit upstream holds only under a non-branch ref (a fork's pull request) is judged as new when merged", async () => {
    const base = (await git(f.work, ["rev-parse", "HEAD"])).stdout.trim();
    const pr = await f.commit(".github/workflows/ci.yml", "on: push\njobs: {exfil: {}}\n", "ci: tweak");
    await git(f.work, ["push", "-q", f.upstream, `${pr}:refs/pull/1/head`]);
    try {
      await git(f.work, ["reset", "-q", "--hard", base]);
      await git(f.work, ["fetch", "-q", "origin", "refs/pull/1/head"]);
      await git(f.work, ["merge", "-q", "--no-ff", "-m", "Merge PR #1", "FETCH_HEAD"]);
      await refusedPush(["HEAD:refs/heads/agent/pr"], new RegExp(`\\[protectedPaths\\] refs/heads/agent/pr: commit ${pr.slice(0, 12)} changes protected path \\.github/workflows/ci\\.yml`));
    } finally {
      await git(f.upstream, ["update-ref", "-d", "refs/pull/1/head"]);
    }
  });

  it("a secret as the name of an empty folder (no file below it to diff) is refused", async () => {
    const empty = (await git(f.work, ["hash-object", "-t", "tree", "-w", "--stdin"], [0], "")).stdout.trim();
    const base = (await git(f.work, ["ls-tree", "HEAD"])).stdout;
    const tree = (await git(f.work, ["mktree"], [0], `${base}040000 tree ${empty}\t${AWS_KEY}\n`)).stdout.trim();
    const commit = (await git(f.work, ["commit-tree", "-p", "HEAD", "-m", "an empty folder", tree])).stdout.trim();
    await refusedPush([`${commit}:refs/heads/agent/folder`], /\[dlp\] refs\/heads\/agent\/folder: commit [0-9a-f]{12} names a folder with a secret: found by the aws detector/);
  });

  it("a tree with an entry named .git or .. is refused by receive-pack's object checks before the policy runs", async () => {
    const blob = (await git(f.work, ["hash-object", "-w", "--stdin"], [0], "#!/bin/sh\necho pwned\n")).stdout.trim();
    const hooks = (await git(f.work, ["mktree"], [0], `100755 blob ${blob}\tpost-checkout\n`)).stdout.trim();
    for (const name of [".git", ".."]) {
      const inner = (await git(f.work, ["mktree"], [0], `040000 tree ${hooks}\thooks\n`)).stdout.trim();
      const tree = (await git(f.work, ["mktree", "--missing"], [0], `040000 tree ${inner}\t${name}\n`)).stdout.trim();
      const commit = (await git(f.work, ["commit-tree", "-p", "HEAD", "-m", "odd tree", tree])).stdout.trim();
      await refusedPush([`${commit}:refs/heads/agent/odd`], name === ".git" ? /hasDotgit/ : /hasDotdot/);
    }
  });

  // fsck takes any header line after committer, and git reads parents only right after
  // tree: a "parent" line down there is no parent to git, and must be none to the checks.
  const IDENT = "A U Thor <a@example.test> 1700000000 +0000";
  const withStrayParent = (tree: string, parent: string | null, stray: string) =>
    rawCommit(`tree ${tree}\n${parent ? `parent ${parent}\n` : ""}author ${IDENT}\ncommitter ${IDENT}\nparent ${stray}\n\ndocs: typo\n`);

  it("a 'parent' line after the committer (no parent to git) hides nothing: what the commit really adds is judged, and the commit is refused", async () => {
    const main = (await git(f.work, ["rev-parse", "HEAD"])).stdout.trim();
    await writeFile(join(f.work, ".github/workflows/evil.yml"), "on: push\n");
    await writeFile(join(f.work, "config.env"), `AWS_ACCESS_KEY_ID=${AWS_KEY}\n`);
    await git(f.work, ["add", "-A"]);
    const tree = (await git(f.work, ["write-tree"])).stdout.trim();
    // The stray "parent" is the commit's own tree: a diff against it shows nothing at all.
    const c = await withStrayParent(tree, main, tree);
    assert.equal((await git(f.work, ["rev-parse", `${c}^@`])).stdout.trim(), main, "git sees one parent, main");
    await refusedPush(
      [`${c}:refs/heads/agent/innocent`],
      /\[commitFormat\] refs\/heads\/agent\/innocent: commit [0-9a-f]{12} has a "parent" line after its author\/committer/,
      /\[protectedPaths\] refs\/heads\/agent\/innocent: commit [0-9a-f]{12} changes protected path \.github\/workflows\/evil\.yml/,
      /\[dlp\] refs\/heads\/agent\/innocent: commit [0-9a-f]{12} adds a secret to config\.env/,
    );
    // A root commit the same way: every path it has is new.
    await refusedPush([`${await withStrayParent(tree, null, tree)}:refs/heads/agent/root`], /\[protectedPaths\] .*\.github\/workflows\/ci\.yml/, /\[dlp\] .*config\.env/);
  });

  it("a fast-forward of protected main whose stray 'parent' is a same-tree commit sent only in the pack is refused", async () => {
    const main = (await git(f.work, ["rev-parse", "HEAD"])).stdout.trim();
    await writeFile(join(f.work, ".github/workflows/ci.yml"), "on: push\njobs: {pwn: {}}\n");
    await git(f.work, ["add", "-A"]);
    const tree = (await git(f.work, ["write-tree"])).stdout.trim();
    // q: a real commit on main with the same tree, referenced by nothing git reads.
    const q = (await git(f.work, ["commit-tree", tree, "-p", main, "-m", "q"])).stdout.trim();
    const c = await withStrayParent(tree, main, q);
    const objects = (await git(f.work, ["rev-list", "--objects", c, "--not", main])).stdout.split("\n").map((l) => l.split(" ")[0]!).filter(Boolean);
    const before = await f.upstreamRefs();
    const out = await rawReceivePack(f.gate.port, REPO, [`${main} ${c} refs/heads/main`], await packOf(f.work, [...objects, q]));
    assert.match(out, /ng refs\/heads\/main pre-receive hook declined/);
    assert.match(f.gate.stderr(), /\[protectedPaths\] refs\/heads\/main: commit [0-9a-f]{12} changes protected path \.github\/workflows\/ci\.yml/);
    assert.equal(await f.upstreamRefs(), before);
  });

  it("a secret as a ref name (branch or lightweight tag) is refused, and the refusal and the gate's log do not repeat it", async () => {
    await f.commit("ok.txt", "fine\n");
    for (const ref of [`refs/heads/agent/${AWS_KEY}`, `refs/tags/v1-${AWS_KEY}`]) {
      const r = await refusedPush([`HEAD:${ref}`], /\[dlp\] \(ref name withheld\): the ref name carries a secret: found by the aws detector/);
      assert.ok(!r.stderr.replace(/\n.*(To |! \[remote rejected\]|error: failed to push).*/g, "").includes(AWS_KEY), r.stderr);
    }
    assert.ok(!f.gate.stderr().includes(AWS_KEY), "the gate's log holds the secret ref name");
  });

  it("one forbidden update refuses the whole push, allowed ones included", async () => {
    await f.commit("ok.txt", "fine\n");
    await refusedPush(["HEAD:refs/heads/agent/fine", "HEAD:refs/heads/not-allowed"], /\[allowedRefs\] refs\/heads\/not-allowed/);
  });

  it("a ref name the glob would let through but git calls malformed (.., HEAD, no refs/ prefix) is refused by the policy itself", async () => {
    const before = await f.upstreamRefs();
    const main = (await git(f.upstream, ["rev-parse", "main"])).stdout.trim();
    for (const ref of ["refs/heads/agent/../main", "refs/heads/agent/x.lock", "HEAD", "heads/agent/x"]) {
      // The git client refuses to send these, so the packets are written by hand.
      const out = await rawReceivePack(f.gate.port, REPO, [`${"0".repeat(40)} ${main} ${ref}`]);
      assert.match(out, new RegExp(`ng ${ref.replaceAll(".", "\\.")} pre-receive hook declined`));
      assert.match(f.gate.stderr(), new RegExp(`\\[allowedRefs\\] ${ref.replaceAll(".", "\\.")}: "${ref.replaceAll(".", "\\.")}" is not a valid ref name`));
    }
    assert.equal(await f.upstreamRefs(), before);
  });

  it("a command that lies about a protected branch's old value cannot force-push it: upstream holds the push to the old value the policy judged", async () => {
    const l1 = await f.commit("lie.txt", "1\n");
    const l2 = await f.commit("lie.txt", "2\n");
    await git(f.work, ["push", "-q", "origin", "HEAD:refs/heads/agent/lie"]);
    await git(f.work, ["reset", "-q", "--hard", "origin/main"]);
    await f.commit("main.txt", "moves on\n");
    await git(f.work, ["push", "-q", "origin", "HEAD:main"]);
    const before = await f.upstreamRefs();
    // l1 -> l2 is a fast-forward, but main is elsewhere: moving it to l2 rewrites history.
    const lied = await rawReceivePack(f.gate.port, REPO, [`${l1} ${l2} refs/heads/main`]);
    assert.match(lied, /ng refs\/heads\/main /);
    const created = await rawReceivePack(f.gate.port, REPO, [`${"0".repeat(40)} ${l2} refs/heads/main`]);
    assert.match(created, /ng refs\/heads\/main /);
    assert.equal(await f.upstreamRefs(), before);
  });

  it("a force-push and a delete of an unprotected branch still reach upstream (the lease lets them through, not a forced refspec)", async () => {
    await f.commit("free.txt", "1\n");
    await git(f.work, ["push", "-q", "origin", "HEAD:refs/heads/agent/free"]);
    await git(f.work, ["commit", "-q", "--amend", "-m", "rewritten"]);
    const rewritten = (await git(f.work, ["rev-parse", "HEAD"])).stdout.trim();
    await git(f.work, ["push", "-q", "--force", "origin", "HEAD:refs/heads/agent/free"]);
    assert.equal((await git(f.upstream, ["rev-parse", "agent/free"])).stdout.trim(), rewritten);
    await git(f.work, ["push", "-q", "origin", ":refs/heads/agent/free"]);
    assert.doesNotMatch(await f.upstreamRefs(), /agent\/free/);
  });

  it("a repo path that is not exactly a declared repo (traversal, encoding, absolute, case, escapes, other service) is refused before git runs, and logged escaped", async () => {
    const paths = [
      "/example.com/acme/widget/../../../../upstream/acme/widget",
      "/example.com/acme/%2e%2e/widget",
      `/${f.upstream}`,
      "/EXAMPLE.COM/acme/widget",
      "/example.com/acme/./widget",
      "/example.com//acme/widget",
      "/example.com/acme/widget.git.git",
      "~/example.com/acme/widget",
      "/example.com/acme/widget\nhost=x",
      "/repos/example.com/acme/widget.git",
      "/example.com/acme/\u009b2J\u001b]0;owned\u0007",
    ];
    for (const path of paths) {
      const out = await rawRequest(f.gate.port, `git-upload-pack ${path}\0host=127.0.0.1\0`);
      assert.match(out, /^[0-9a-f]{4}ERR git-gate: repository .* is not declared for this bottle/, path);
    }
    assert.match(await rawRequest(f.gate.port, `git-upload-archive /${REPO}\0host=127.0.0.1\0`), /ERR git-gate: service git-upload-archive is not offered/);
    assert.ok(!/[\u0007\u001b\u009b]/.test(f.gate.stderr()), "a raw escape sequence reached the gate's log");
  });
});

/** An empty pack: what a client sends when every object is already on the other side. */
function emptyPack(): Buffer {
  const head = Buffer.concat([Buffer.from("PACK"), Buffer.from([0, 0, 0, 2, 0, 0, 0, 0])]);
  return Buffer.concat([head, createHash("sha1").update(head).digest()]);
}

/** Whether the pkt-lines in `buf` end with a flush packet ("0000"). */
function endsAtFlush(buf: Buffer): boolean {
  for (let at = 0; at + 4 <= buf.length; ) {
    const len = Number.parseInt(buf.subarray(at, at + 4).toString("latin1"), 16);
    if (len === 0) return true;
    at += len;
  }
  return false;
}

/** `git pack-objects` of exactly these objects. */
function packOf(cwd: string, shas: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn("git", ["pack-objects", "--stdout"], { cwd, stdio: ["pipe", "pipe", "inherit"] });
    const chunks: Buffer[] = [];
    p.stdout.on("data", (c: Buffer) => chunks.push(c));
    p.on("error", reject);
    p.on("close", (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`git pack-objects exited ${code}`))));
    p.stdin.end(`${shas.join("\n")}\n`);
  });
}

/** Speak receive-pack by hand: commands with report-status, a pack (empty by default), the report. */
function rawReceivePack(port: number, repo: string, commands: string[], pack = emptyPack()): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    let sent = false;
    socket.on("error", reject);
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      // The advertisement ends with a flush packet; then send the update.
      if (!sent && endsAtFlush(buf)) {
        sent = true;
        const cmds = commands.map((c, i) => pkt(i === 0 ? `${c}\0report-status\n` : `${c}\n`));
        socket.write(Buffer.concat([...cmds, Buffer.from("0000"), pack]));
      }
    });
    socket.on("end", () => resolve(buf.toString("latin1")));
    socket.setTimeout(30_000, () => socket.destroy(new Error("raw receive-pack timed out")));
    socket.write(pkt(`git-receive-pack /${repo}\0host=127.0.0.1\0`));
  });
}

/** Send one request line, return everything the gate answers before it closes. */
function rawRequest(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("error", reject);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("end", () => resolve(Buffer.concat(chunks).toString("latin1")));
    socket.setTimeout(30_000, () => socket.destroy(new Error("raw request timed out")));
    socket.write(pkt(line));
  });
}

describe("git-gate judges a push by what it does to the branch, not commit by commit (real process, real git)", () => {
  let f: GateFixture;
  let git: GateFixture["git"];
  const head = async () => (await git(f.work, ["rev-parse", "HEAD"])).stdout.trim();
  const upstreamAt = async (ref: string) => (await git(f.upstream, ["rev-parse", "--verify", "-q", ref], [0, 1])).stdout.trim();

  const refusedPush = (args: string[], ...patterns: RegExp[]) => refusedPushTo(f, args, ...patterns);

  const publish = (branch: string, file: string, content: string) => publishUpstream(f, branch, file, content);

  before(async () => {
    // high_entropy off: with it, a key's body lines alone are caught as random text, which
    // would hide whether the key itself is seen.
    f = await startGateFixture({
      push: { allowedRefs: ["agent/**"], protectedBranches: ["main"], protectedPaths: [".github/**"], dlp: true },
      dlpDisabled: ["high_entropy"],
    });
    git = f.git;
  });
  after(() => f?.stop());
  beforeEach(async () => {
    await git(f.work, ["fetch", "-q", "origin"]);
    await git(f.work, ["checkout", "-q", "--detach", "origin/main"]);
    await git(f.work, ["clean", "-qfdx"]);
  });

  it("a private key whose header and body come in separate commits of one push is refused as a key", async () => {
    const pem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    const [header, ...rest] = pem.trimEnd().split("\n");
    const first = await f.commit("keys/id.txt", `${header}\n`);
    await f.commit("keys/id.txt", `${header}\n${rest.join("\n")}\n`);
    await refusedPush(["HEAD:refs/heads/agent/split"], /\[dlp\] refs\/heads\/agent\/split: the 2 new commits together add a secret to keys\/id\.txt, split across them: found by the private_key detector/);
    // Neither commit is caught alone: the header passes on its own, and the whole key in
    // one commit is refused as what it is.
    await git(f.work, ["push", "-q", "origin", `${first}:refs/heads/agent/header-only`]);
    await git(f.work, ["checkout", "-q", "--detach", "origin/main"]);
    await f.commit("keys/whole.txt", pem);
    await refusedPush(["HEAD:refs/heads/agent/whole"], /\[dlp\] refs\/heads\/agent\/whole: commit [0-9a-f]{12} adds a secret to keys\/whole\.txt: found by the private_key detector/);
  });

  it("a force-push that rewinds or replaces an unprotected branch past a published change to a protected path is refused", async () => {
    const base = (await git(f.work, ["rev-parse", "origin/main"])).stdout.trim();
    await git(f.work, ["push", "-q", "origin", `${base}:refs/heads/agent/ci`]);
    const hardened = await publish("agent/ci", ".github/workflows/ci.yml", "on: push\njobs: {scan: {}}\n");
    const taken = /\[protectedPaths\] refs\/heads\/agent\/ci: the update takes back [0-9a-f]{12}'s change to protected path \.github\/workflows\/ci\.yml \(matches \.github\/\*\*\)/;
    await refusedPush(["--force", `${base}:refs/heads/agent/ci`], taken);
    const other = await f.commit("free.txt", "free\n");
    await refusedPush(["--force", `${other}:refs/heads/agent/ci`], taken);
    assert.equal(await upstreamAt("agent/ci"), hardened);
  });

  it("a force-push that rebases the agent's own work onto newer published work, or rewrites only the agent's commits, passes", async () => {
    await f.commit("work.txt", "1\n");
    await git(f.work, ["push", "-q", "origin", "HEAD:refs/heads/agent/work"]);
    await git(f.work, ["commit", "-q", "--amend", "-m", "reworded"]);
    await git(f.work, ["push", "-q", "--force", "origin", "HEAD:refs/heads/agent/work"]);
    const mine = await head();
    // main moves on with a protected change; the agent rebases onto it.
    await publish("main", ".github/workflows/ci.yml", "on: push\njobs: {lint: {}}\n");
    await git(f.work, ["checkout", "-q", "--detach", mine]);
    await git(f.work, ["rebase", "-q", "origin/main"]);
    await git(f.work, ["push", "-q", "--force", "origin", "HEAD:refs/heads/agent/work"]);
    assert.equal(await upstreamAt("agent/work"), await head());
  });
});

describe("git-gate against a client that opens sessions and never finishes them", () => {
  // git sends a keep-alive every 5 s while a hook runs (receive.keepAlive), so 6 s of
  // silence is a session nobody finishes.
  let f: GateFixture;
  before(async () => {
    f = await startGateFixture({ push: { allowedRefs: [], protectedBranches: [], protectedPaths: [], dlp: false }, args: ["--max-sessions", "2", "--idle-timeout", "6"] });
  });
  after(() => f?.stop());

  /** A session with its request sent: what it got so far, and when it closed. `halfOpen`:
   * the gate's FIN does not close this side (a client that never closes). */
  const openSession = (halfOpen: boolean): Promise<{ socket: net.Socket; got: () => string; closed: Promise<void> }> =>
    new Promise((resolve, reject) => {
      let text = "";
      const socket = net.connect({ port: f.gate.port, host: "127.0.0.1", allowHalfOpen: halfOpen }, () => {
        socket.write(pkt(`git-upload-pack /${REPO}\0host=127.0.0.1\0`));
        resolve({ socket, got: () => text, closed });
      });
      const closed = new Promise<void>((r) => socket.on("close", () => r()));
      socket.on("data", (c: Buffer) => (text += c.toString("latin1"))).on("error", reject);
    });
  /** Waits (up to 10 s) until every session got what `want` matches: the gate answers when it answers. */
  const untilAll = async (sessions: { got: () => string }[], want: RegExp, what: string) => {
    for (let i = 0; i < 500 && !sessions.every((s) => want.test(s.got())); i++) await new Promise((r) => setTimeout(r, 20));
    for (const s of sessions) assert.match(s.got(), want, what);
  };
  /** Two sessions the gate counts (their advertisements came), tried until `deadline`: a
   * session of the test before (its clone) can hold a place a moment after git exited. */
  const holdTwo = async (halfOpen: boolean, deadline = Date.now() + 10_000) => {
    for (;;) {
      const held = [await openSession(halfOpen), await openSession(halfOpen)];
      await untilAll(held, /refs\/heads\/main|ERR /, "the held sessions were answered");
      if (held.every((h) => /refs\/heads\/main/.test(h.got())) || Date.now() > deadline) return held;
      for (const h of held) h.socket.destroy();
      await Promise.all(held.map((h) => h.closed));
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const ADVERTISED = /refs\/heads\/main/;

  it("sessions past the cap are refused, and a quiet session is ended so a new one fits", async () => {
    const started = Date.now();
    const held = await holdTwo(false);
    await untilAll(held, ADVERTISED, "the held sessions got their advertisement");
    assert.match(await rawRequest(f.gate.port, `git-upload-pack /${REPO}\0host=127.0.0.1\0`), /ERR git-gate: too many git sessions at once \(at most 2\)/);
    await Promise.all(held.map((h) => h.closed));
    assert.ok(Date.now() - started >= 6000, "a held session ended before its idle time");
    assert.match(f.gate.stderr(), /ended a session from 127\.0\.0\.1: nothing sent either way for 6s/);
    const clone = await f.git(f.dir, ["clone", "-q", f.url(REPO), join(f.dir, "after-idle")]);
    assert.equal(clone.code, 0, clone.stderr);
  });

  it("a refused client that closes gives its place back at once, not after the request timeout: a client retrying at the cap does not keep every place taken", async () => {
    const held = await holdTwo(false);
    await untilAll(held, ADVERTISED, "the held sessions got their advertisement");
    // Refused five times over, each closing its side once it read the refusal. Before, the
    // gate did not read what they had sent, so it never saw them close: each held a place
    // for the request timeout (10 s).
    for (let i = 0; i < 5; i++) {
      const refused = await openSession(false);
      await refused.closed;
      assert.match(refused.got(), /ERR git-gate: too many git sessions at once/);
    }
    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
    // Well inside the 10 s those refusals would have held their places.
    const again = await holdTwo(false, Date.now() + 5_000);
    await untilAll(again, ADVERTISED, "two new sessions fit once the held ones closed");
    for (const h of again) h.socket.destroy();
  });

  it("a refused client that never closes its side does not keep a place under the cap", async () => {
    const held = await holdTwo(true);
    await untilAll(held, ADVERTISED, "the held sessions got their advertisement");
    const refused = [await openSession(true), await openSession(true), await openSession(true)];
    await untilAll(refused, /ERR git-gate: too many git sessions at once/, "the sessions past the cap were refused");
    for (const h of held) h.socket.destroy();
    // The gate lets a refused client read its refusal for the request timeout (10 s), then
    // lets go of it; before, the three still counted, and any new session was refused.
    await new Promise((r) => setTimeout(r, 10_500));
    const clone = await f.git(f.dir, ["clone", "-q", f.url(REPO), join(f.dir, "after-refused")]);
    assert.equal(clone.code, 0, clone.stderr);
    for (const r of refused) r.socket.destroy();
  });

  it("a push whose checks take longer than the idle time is not ended: git keeps it talking", async () => {
    const hook = join(f.dir, "hooks", "pre-receive");
    const original = await readFile(hook, "utf8");
    await writeFile(hook, original.replace(/^(#!.*\n)/, "$1sleep 11\n"));
    try {
      await f.commit("slow.txt", "slow\n");
      const r = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/slow"], [0, 1]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /pushed refs\/heads\/slow to upstream/);
    } finally {
      await writeFile(hook, original);
    }
  });
});

describe("git-gate with any ref allowed (the manifest's default): what a ref name resolves to upstream (real process, real git)", () => {
  let f: GateFixture;
  let git: GateFixture["git"];
  const refusedPush = (args: string[], ...patterns: RegExp[]) => refusedPushTo(f, args, ...patterns);

  before(async () => {
    f = await startGateFixture({ push: { allowedRefs: [], protectedBranches: ["main", "refs/tags/v*"], protectedPaths: [".github/**", "secrets"], dlp: true } });
    git = f.git;
  });
  after(() => f?.stop());
  beforeEach(async () => {
    await git(f.work, ["fetch", "-q", "--prune", "--prune-tags", "origin"]);
    await git(f.work, ["checkout", "-q", "-B", "main", "origin/main"]);
    await git(f.work, ["clean", "-qfdx"]);
  });

  /** A commit on history of its own (what a force-push would put in place of main's). */
  async function unrelated(): Promise<string> {
    await git(f.work, ["checkout", "-q", "--orphan", `o-${Date.now()}`]);
    await git(f.work, ["rm", "-rqf", "."]);
    return f.commit("other.txt", "other history\n");
  }

  it("a ref upstream holds as a symbolic ref to main cannot be force-pushed or deleted in main's place", async () => {
    await git(f.upstream, ["symbolic-ref", "refs/heads/master", "refs/heads/main"]);
    try {
      await git(f.work, ["fetch", "-q", "origin"]);
      // main moved on, then rewritten (its new commit amended: no protected path involved).
      await f.commit("alias.txt", "1\n");
      await git(f.work, ["push", "-q", "origin", "HEAD:main"]);
      await git(f.work, ["fetch", "-q", "origin"]);
      await git(f.work, ["commit", "-q", "--amend", "-m", "rewritten"]);
      const other = (await git(f.work, ["rev-parse", "HEAD"])).stdout.trim();
      await refusedPush([`+${other}:refs/heads/main`], /force-push \(non-fast-forward\) to protected branch main/);
      const alias = /\[allowedRefs\] refs\/heads\/master: upstream holds refs\/heads\/master as a symbolic ref to refs\/heads\/main, so a push to it would move refs\/heads\/main/;
      await refusedPush([`+${other}:refs/heads/master`], alias);
      await refusedPush([":refs/heads/master"], alias);
    } finally {
      await git(f.upstream, ["update-ref", "--no-deref", "-d", "refs/heads/master"]);
    }
  });

  it("a spelling of main that differs in any part's case (refs/Heads/main too) is refused: one ref on a case-insensitive upstream", async () => {
    const other = await unrelated();
    for (const ref of ["refs/heads/Main", "refs/Heads/main", "refs/HEADS/MAIN"]) {
      await refusedPush([`${other}:${ref}`], new RegExp(`\\[protectedBranches\\] ${ref}: ${ref} differs from protected main only in case`));
    }
  });

  it("a refs/tags/ pattern in protected_branches protects those tags: created once, never moved or deleted", async () => {
    await git(f.work, ["tag", "v1", "HEAD"]);
    const r = await git(f.work, ["push", "origin", "refs/tags/v1"], [0, 1]);
    assert.equal(r.code, 0, r.stderr);
    const other = await unrelated();
    await refusedPush([`+${other}:refs/tags/v1`], /\[protectedBranches\] refs\/tags\/v1: force-push \(non-fast-forward\) to protected ref refs\/tags\/v1 is not allowed/);
    await refusedPush([":refs/tags/v1"], /\[protectedBranches\] refs\/tags\/v1: deleting protected ref refs\/tags\/v1 is not allowed/);
  });

  it("protected paths are folded as NTFS and APFS fold them: a dotless i or a long s is no way around", async () => {
    await f.commit(".g\u0131thub/workflows/evil.yml", "on: push\n");
    await f.commit("\u017fecrets/token.txt", "x\n");
    await refusedPush(
      ["HEAD:refs/heads/agent/fold"],
      /\[protectedPaths\] refs\/heads\/agent\/fold: commit [0-9a-f]{12} changes protected path \.g\u0131thub\/workflows\/evil\.yml \(matches \.github\/\*\*\)/,
      /\[protectedPaths\] refs\/heads\/agent\/fold: commit [0-9a-f]{12} changes protected path \u017fecrets\/token\.txt \(matches secrets\)/,
    );
  });
});

describe("git-gate in front of an upstream that speaks only protocol v0 (no symref but HEAD's is shown; real process, real git)", () => {
  let f: GateFixture;
  let git: GateFixture["git"];
  const refusedPush = (args: string[], ...patterns: RegExp[]) => refusedPushTo(f, args, ...patterns);

  before(async () => {
    f = await startGateFixture({ push: { allowedRefs: ["agent/**"], protectedBranches: ["main"], protectedPaths: [".github/**"], dlp: true }, v0Upstream: true });
    git = f.git;
  });
  after(() => f?.stop());
  beforeEach(async () => {
    await git(f.work, ["fetch", "-q", "--prune", "origin"]);
    await git(f.work, ["checkout", "-q", "-B", "main", "origin/main"]);
    await git(f.work, ["clean", "-qfdx"]);
  });

  it("an allowed ref upstream holds as a symbolic ref to protected main cannot move, rewrite or delete main", async () => {
    await git(f.upstream, ["symbolic-ref", "refs/heads/agent/alias", "refs/heads/main"]);
    try {
      const url = `${JSON.parse(await readFile(join(f.dir, "config.json"), "utf8")).upstreams[0].url}/acme/widget`;
      const listing = (await git(f.dir, ["ls-remote", "--symref", url])).stdout;
      assert.match(listing, /^[0-9a-f]{40}\trefs\/heads\/agent\/alias$/m);
      assert.doesNotMatch(listing, /^ref: .*\trefs\/heads\/agent\/alias$/m, "the upstream shows the symref: it is not v0-only");
      // A maintainer moves main on; the rewrite replaces that commit (no protected path in it).
      await f.commit("maintainer.txt", "1\n");
      await git(f.work, ["push", "-q", f.upstream, "HEAD:main"]);
      await git(f.work, ["fetch", "-q", "origin"]);
      const main = (await git(f.upstream, ["rev-parse", "main"])).stdout.trim();
      const other = await f.commit("other.txt", "other\n");
      await git(f.work, ["reset", "-q", "--hard", `${main}^`]);
      const rewrite = await f.commit("rewrite.txt", "not main's history\n");
      const why = (rule: string, refused: string) =>
        new RegExp(`\\[${rule}\\] refs/heads/agent/alias: upstream speaks protocol v0, which hides symbolic refs, and has refs/heads/agent/alias at the same commit as refs/heads/main: if it is a symbolic ref to refs/heads/main, the push moves refs/heads/main, which the policy refuses: ${refused}`);
      await refusedPush([`${other}:refs/heads/agent/alias`], why("allowedRefs", "refs/heads/main is not an allowed ref"));
      await refusedPush([`+${rewrite}:refs/heads/agent/alias`], why("protectedBranches", "force-push \\(non-fast-forward\\) to protected branch main is not allowed"));
      await refusedPush([":refs/heads/agent/alias"], why("protectedBranches", "deleting protected branch main is not allowed"));
      assert.equal((await git(f.upstream, ["rev-parse", "main"])).stdout.trim(), main);
    } finally {
      await git(f.upstream, ["update-ref", "--no-deref", "-d", "refs/heads/agent/alias"]);
    }
  });

  it("an agent branch of its own still moves, is rewritten and deleted as before", async () => {
    await f.commit("mine.txt", "1\n");
    await git(f.work, ["push", "-q", "origin", "HEAD:refs/heads/agent/mine"]);
    await f.commit("mine.txt", "2\n");
    await git(f.work, ["push", "-q", "origin", "HEAD:refs/heads/agent/mine"]);
    await git(f.work, ["commit", "-q", "--amend", "-m", "reworded"]);
    await git(f.work, ["push", "-q", "--force", "origin", "HEAD:refs/heads/agent/mine"]);
    assert.equal((await git(f.upstream, ["rev-parse", "agent/mine"])).stdout.trim(), (await git(f.work, ["rev-parse", "HEAD"])).stdout.trim());
    await git(f.work, ["push", "-q", "origin", ":refs/heads/agent/mine"]);
    assert.equal((await git(f.upstream, ["rev-parse", "--verify", "-q", "agent/mine"], [1])).code, 1);
  });
});
