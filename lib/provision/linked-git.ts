// A checkout whose .git is a file, not a folder: a linked worktree (`git worktree add`),
// a submodule, or a clone made with --separate-git-dir. The file points at a git dir
// elsewhere on the host ("gitdir: /home/me/app/.git/worktrees/feature"), a path that does
// not exist in the bottle, so the copy there is no repository at all. The staged copy gets
// that git dir instead, as a standalone .git folder: the shared part (objects, refs,
// config) plus a worktree's own HEAD and index, with the settings that tied it to the
// host's layout (core.worktree, core.bare of a bare main repo) taken out.
import { existsSync, statSync } from "node:fs";
import { cp, readFile, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { BbError } from "../errors.ts";
import { run } from "../proc.ts";

export interface LinkedGitDir {
  /** The git dir the .git file names (a worktree's private one, or the repository). */
  gitDir: string;
  /** Where objects, refs and config live: the main repository's git dir for a worktree. */
  commonDir: string;
}

/** Files a linked worktree keeps for itself in its private git dir. */
const PER_WORKTREE = ["HEAD", "index", "ORIG_HEAD", "MERGE_HEAD", "logs/HEAD", "config.worktree"];

/** The git dir `checkout/.git` points at, or null when .git is a folder or absent. */
export async function linkedGitDir(checkout: string): Promise<LinkedGitDir | null> {
  const dotGit = join(checkout, ".git");
  if (!existsSync(dotGit) || !statSync(dotGit).isFile()) return null;
  const m = /^gitdir: (.+)$/m.exec(await readFile(dotGit, "utf8"));
  if (!m) throw new BbError("USAGE", `${dotGit} is a file but not a "gitdir: PATH" link, so the bottle's copy of ${checkout} would not be a git repository`);
  const gitDir = resolve(checkout, m[1]!.trim());
  if (!existsSync(join(gitDir, "HEAD"))) {
    throw new BbError("USAGE", `${dotGit} points at ${gitDir}, which is not a git directory (a removed worktree, or a moved repository?), so the bottle's copy of ${checkout} would not be a git repository`);
  }
  const common = join(gitDir, "commondir");
  const commonDir = existsSync(common) ? resolve(gitDir, (await readFile(common, "utf8")).trim()) : gitDir;
  return { gitDir, commonDir };
}

/** Make `stagedDotGit` a standalone copy of `linked` (replacing a copied .git file there). */
export async function inlineGitDir(linked: LinkedGitDir, stagedDotGit: string): Promise<void> {
  await rm(stagedDotGit, { force: true });
  const others = join(linked.commonDir, "worktrees"); // the other worktrees' private dirs
  await cp(linked.commonDir, stagedDotGit, { recursive: true, verbatimSymlinks: true, filter: (src) => src !== others });
  if (linked.gitDir !== linked.commonDir) {
    for (const f of PER_WORKTREE) {
      const from = join(linked.gitDir, f);
      if (existsSync(from)) await cp(from, join(stagedDotGit, f));
    }
  }
  const config = join(stagedDotGit, "config");
  const git = (args: string[]) => run(["git", "config", "--file", config, ...args], { expect: [0, 5], what: `Cannot adjust the copied ${config}` });
  await git(["--unset-all", "core.worktree"]);
  await git(["core.bare", "false"]);
}
