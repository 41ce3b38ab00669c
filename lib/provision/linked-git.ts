// A checkout whose .git is a file, not a folder: a linked worktree (`git worktree add`),
// a submodule, or a clone made with --separate-git-dir. The file points at a git dir
// elsewhere on the host ("gitdir: /home/me/app/.git/worktrees/feature"), a path that does
// not exist in the bottle, so the copy there is no repository at all. The staged copy gets
// that git dir instead, as a standalone .git folder: the shared part (objects, refs,
// config) plus a worktree's own HEAD and index, with the settings that tied it to the
// host's layout (core.worktree, core.bare of a bare main repo) taken out.
import { existsSync, statSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { BbError } from "../errors.ts";
import { log } from "../log.ts";
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

/**
 * Pack `linked` as the copy's .git folder: everything but its config into `tarFile`, with
 * names relative to .git (the guest unpacks it there), and its config, adjusted, to
 * `configOut` (the staging tree's copy, which the credential scrub then goes over). Packed
 * with tar, like the checkout, rather than copied: a git dir can hold thousands of loose
 * objects, and creating files one by one is what costs.
 */
export async function packGitDir(linked: LinkedGitDir, tarFile: string, configOut: string): Promise<void> {
  const worktree = linked.gitDir !== linked.commonDir;
  // The main repository's own HEAD, index and reflog are not this worktree's.
  const ownFiles = worktree ? PER_WORKTREE : [];
  const leaveOut = new Set(["config", "worktrees", ...ownFiles]); // worktrees/: the other worktrees' private dirs
  const shared = (await readdir(linked.commonDir)).filter((n) => !leaveOut.has(n)).map((n) => `./${n}`);
  const pack = async (from: string, mode: "-cf" | "-rf", names: string[], exclude: string[] = []) => {
    const r = await run(["tar", "-C", from, ...exclude.map((e) => `--exclude=./${e}`), mode, tarFile, ...names], { expect: [0, 1], what: `Cannot pack the git dir ${from}` });
    // Exit 1 is GNU tar's "a file changed as we read it" (git ran meanwhile): still whole.
    if (r.code === 1) log.warn(`provision: ${from} changed while it was packed; the bottle has it as tar read it`);
  };
  await mkdir(dirname(tarFile), { recursive: true });
  await pack(linked.commonDir, "-cf", shared, ownFiles.filter((f) => f.includes("/")));
  const own = ownFiles.filter((f) => existsSync(join(linked.gitDir, f))).map((f) => `./${f}`);
  if (own.length) await pack(linked.gitDir, "-rf", own);

  await mkdir(dirname(configOut), { recursive: true });
  await copyFile(join(linked.commonDir, "config"), configOut);
  const git = (args: string[]) => run(["git", "config", "--file", configOut, ...args], { expect: [0, 5], what: `Cannot adjust the copied ${configOut}` });
  await git(["--unset-all", "core.worktree"]);
  await git(["core.bare", "false"]);
}
