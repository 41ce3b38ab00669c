import assert from "node:assert/strict";
import { existsSync, realpathSync } from "node:fs";
import { cp, mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, test } from "node:test";
import { BbError } from "../errors.ts";
import { run } from "../proc.ts";
import { fifo, settled } from "../../tests/support/fifo.ts";
import { tempDir } from "../../tests/support/tmp.ts";
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

  it("another checkout's .git reached through a symlink, or spelled .GIT, is refused like the direct path", async () => {
    const other = join(dir, "secretproj");
    await repoWithCommit(other, "secret.txt");
    const co = join(dir, "crafted");
    await mkdir(co);
    const refused = (e: BbError) => {
      assert.equal(e.code, "USAGE");
      assert.match(e.message, /as its git dir, but that is the \.git folder of another checkout \(.*secretproj\)/);
      return true;
    };
    await writeFile(join(co, ".git"), `gitdir: ${join(other, ".git")}\n`);
    await assert.rejects(linkedGitDir(co), refused);

    await symlink(join(other, ".git"), join(co, "evil"));
    await writeFile(join(co, ".git"), "gitdir: evil\n");
    await assert.rejects(linkedGitDir(co), (e: BbError) => refused(e) && /names .*crafted\/evil \(which is .*secretproj\/\.git\)/.test(e.message));

    // What a case-insensitive file system (macOS) opens as .git: refused on any.
    const upper = join(dir, "upperproj");
    await repoWithCommit(upper, "u.txt");
    await rename(join(upper, ".git"), join(upper, ".GIT"));
    await writeFile(join(co, ".git"), `gitdir: ${join(upper, ".GIT")}\n`);
    await assert.rejects(linkedGitDir(co), /that is the \.git folder of another checkout \(.*upperproj\)/);
  });

  it("a git dir named through a symlink is checked and packed at its real path", async () => {
    const repo = join(dir, "sep-link");
    const gitDir = join(dir, "sep-link-gitdir");
    await repoWithCommit(repo, "l.txt", ["--separate-git-dir", gitDir]);
    await symlink(gitDir, join(repo, "meta"));
    await writeFile(join(repo, ".git"), "gitdir: meta\n");
    const linked = await linkedGitDir(repo);
    assert.deepEqual(linked, { gitDir: realpathSync(gitDir), commonDir: realpathSync(gitDir) });

    const copy = await stagedCopy(repo, gitDir);
    assert.equal(await git(copy, "log", "--format=%s"), "l.txt");
  });

  it("a --separate-git-dir clone without core.worktree is taken; a folder that only has a HEAD is no git dir", async () => {
    const repo = join(dir, "sep-plain");
    const gitDir = join(dir, "sep-plain-gitdir");
    await repoWithCommit(repo, "p.txt", ["--separate-git-dir", gitDir]);
    assert.equal(await git(repo, "config", "--get", "core.worktree").catch(() => ""), "", "git init wrote core.worktree");
    assert.ok(await linkedGitDir(repo));

    const fake = join(dir, "not-a-repo");
    await mkdir(fake);
    await writeFile(join(fake, "HEAD"), "ref: refs/heads/main\n");
    await writeFile(join(fake, "credentials"), "secret\n");
    await writeFile(join(repo, ".git"), `gitdir: ${fake}\n`);
    await assert.rejects(linkedGitDir(repo), /names .*not-a-repo as its git dir, but it has no objects\/ and refs\/ folders, so it is no git directory/);
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

test("a worktree whose commondir or gitdir file is a FIFO is refused (STATE, naming it) instead of waited on, Ctrl-C and all", async (t) => {
  const dir = realpathSync(await tempDir(t));
  const env = { GIT_CONFIG_GLOBAL: join(dir, "gc"), GIT_CONFIG_NOSYSTEM: "1" };
  await writeFile(join(dir, "gc"), "[user]\n\tname = T\n\temail = t@example.test\n");
  const main = join(dir, "main");
  await run(["git", "init", "-q", main], { env });
  await run(["git", "commit", "-q", "--allow-empty", "-m", "a"], { cwd: main, env });
  const names = ["commondir", "gitdir"];
  // Both made before either file is swapped: git itself reads the other worktrees' files.
  for (const name of names) await run(["git", "worktree", "add", "-q", "-b", `b-${name}`, join(dir, `wt-${name}`)], { cwd: main, env });
  for (const name of names) {
    const file = join(main, ".git", "worktrees", `wt-${name}`, name);
    await rm(file);
    await fifo(t, file);
    const err = await settled(`linkedGitDir done with the ${name} FIFO`, linkedGitDir(join(dir, `wt-${name}`)));
    assert.ok(err instanceof BbError && err.code === "STATE", String(err));
    assert.equal(err.message, `${file} is a FIFO, not a regular file`);
  }
});
