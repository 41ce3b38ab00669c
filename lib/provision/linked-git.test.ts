import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BbError } from "../errors.ts";
import { run } from "../proc.ts";
import { adjustLinkedConfig, linkedGitConfigs, linkedGitDir, packGitDir } from "./linked-git.ts";

describe("a checkout whose .git is a file becomes a standalone repository in the staged copy", () => {
  let dir: string;
  const env = () => ({ GIT_CONFIG_GLOBAL: join(dir, "gc"), GIT_CONFIG_NOSYSTEM: "1" });
  const git = async (cwd: string, ...args: string[]) => (await run(["git", ...args], { cwd, env: env() })).stdout.trim();

  /** Copy `checkout` as the bottle gets it: the files, then the git dir packed into .git
   * (as the guest unpacks it), then the host repo moved away. */
  async function stagedCopy(checkout: string, hostRepo: string): Promise<string> {
    const copy = join(dir, `copy-${Math.random().toString(36).slice(2)}`);
    await cp(checkout, copy, { recursive: true, verbatimSymlinks: true });
    const linked = await linkedGitDir(checkout);
    assert.ok(linked, "the .git file was not recognised");
    const tar = `${copy}.tar`;
    await rm(join(copy, ".git"));
    const configs = await linkedGitConfigs(linked);
    await packGitDir(linked, tar, { configs, leaveOut: new Set() });
    await mkdir(join(copy, ".git"));
    await run(["tar", "-x", "-C", join(copy, ".git"), "-f", tar]);
    // The config files are left out of the tar: stage() puts (scrubbed) copies in place.
    for (const [from, rel] of configs) {
      assert.ok(!existsSync(join(copy, ".git", rel)), `${rel} came in the tar`);
      await cp(from, join(copy, ".git", rel));
    }
    await adjustLinkedConfig(join(copy, ".git", "config"));
    // Nothing on the host may be needed any more: the bottle has only the copy.
    await rename(hostRepo, `${hostRepo}-gone`);
    return copy;
  }

  /** A new repository at `path` (git init `initArgs`) with one commit adding `file`. */
  async function repoWithCommit(path: string, file: string, initArgs: string[] = []): Promise<void> {
    await run(["git", "init", "-q", ...initArgs, path], { env: env() });
    await writeFile(join(path, file), `${file}\n`);
    await git(path, "add", file);
    await git(path, "commit", "-q", "-m", file);
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bb-linked-git-"));
    await writeFile(join(dir, "gc"), "[user]\n\tname = T\n\temail = t@example.test\n[init]\n\tdefaultBranch = main\n");
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("a linked worktree keeps its own branch, index and history, and drops the other worktrees", async () => {
    const main = join(dir, "main");
    await repoWithCommit(main, "a.txt");
    await git(main, "worktree", "add", "-q", "-b", "feature", join(dir, "wt"));
    await git(main, "worktree", "add", "-q", "-b", "other", join(dir, "wt-other"));
    await writeFile(join(dir, "wt", "b.txt"), "b\n");
    await git(join(dir, "wt"), "add", "b.txt");
    await git(join(dir, "wt"), "commit", "-q", "-m", "on feature");
    await writeFile(join(dir, "wt", "staged.txt"), "staged\n");
    await git(join(dir, "wt"), "add", "staged.txt");
    await git(main, "commit", "-q", "--allow-empty", "-m", "main moves");
    await git(main, "reset", "-q", "--hard", "HEAD"); // the main worktree's ORIG_HEAD: "main moves"
    await rm(join(main, ".git", "worktrees", "wt", "ORIG_HEAD")); // the worktree has none of its own

    const copy = await stagedCopy(join(dir, "wt"), main);
    assert.equal(await git(copy, "rev-parse", "--abbrev-ref", "HEAD"), "feature");
    assert.equal(await git(copy, "log", "--format=%s"), "on feature\na.txt");
    assert.equal(await git(copy, "status", "--porcelain"), "A  staged.txt", "the worktree's own index came along");
    assert.equal(await git(copy, "rev-parse", "--is-bare-repository"), "false");
    assert.ok(!existsSync(join(copy, ".git", "worktrees")), "the other worktrees' private dirs were copied");
    assert.ok(!existsSync(join(copy, ".git", "ORIG_HEAD")), "the main worktree's ORIG_HEAD came along");
    assert.doesNotMatch(await git(copy, "reflog", "--format=%gs"), /main moves/, "the main worktree's reflog came along");
    await git(copy, "commit", "-q", "-m", "in the bottle");
  });

  it("a worktree of a bare repository is not bare in the copy", async () => {
    const origin = join(dir, "origin");
    await repoWithCommit(origin, "x.txt");
    const bare = join(dir, "bare.git");
    await run(["git", "clone", "-q", "--bare", origin, bare], { env: env() });
    await git(bare, "worktree", "add", "-q", join(dir, "bare-wt"), "main");

    const copy = await stagedCopy(join(dir, "bare-wt"), bare);
    assert.equal(await git(copy, "rev-parse", "--is-bare-repository"), "false");
    assert.equal(await git(copy, "status", "--porcelain"), "");
    assert.equal(await git(copy, "log", "--format=%s"), "x.txt");
  });

  it("a clone with --separate-git-dir (what a submodule checkout looks like) loses its core.worktree", async () => {
    const repo = join(dir, "sep");
    const gitDir = join(dir, "sep-gitdir");
    await repoWithCommit(repo, "s.txt", ["--separate-git-dir", gitDir]);
    await git(repo, "config", "core.worktree", repo);

    const copy = await stagedCopy(repo, gitDir);
    assert.equal(await git(copy, "status", "--porcelain"), "");
    assert.equal(await git(copy, "rev-parse", "--show-toplevel"), copy);
  });

  it("a .git folder needs nothing; a .git file that leads nowhere is refused, naming it", async () => {
    const plain = join(dir, "plain");
    await mkdir(join(plain, ".git"), { recursive: true });
    assert.equal(await linkedGitDir(plain), null);
    assert.equal(await linkedGitDir(dir), null);

    const stale = join(dir, "stale");
    await mkdir(stale);
    await writeFile(join(stale, ".git"), `gitdir: ${join(dir, "removed/.git/worktrees/stale")}\n`);
    await assert.rejects(linkedGitDir(stale), (e: BbError) => {
      assert.equal(e.code, "USAGE");
      assert.match(e.message, /stale\/\.git points at .*removed\/\.git\/worktrees\/stale, which is not a git directory/);
      return true;
    });
    await writeFile(join(stale, ".git"), "not a link\n");
    await assert.rejects(linkedGitDir(stale), /stale\/\.git is a file but not a "gitdir: PATH" link/);
  });
});
