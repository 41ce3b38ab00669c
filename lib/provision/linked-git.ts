// A checkout whose .git is a file, not a folder: a linked worktree (`git worktree add`),
// a submodule, or a clone made with --separate-git-dir. The file points at a git dir
// elsewhere on the host ("gitdir: /home/me/app/.git/worktrees/feature"), a path that does
// not exist in the bottle, so the copy there is no repository at all. The staged copy gets
// that git dir instead, as a standalone .git folder: the shared part (objects, refs,
// config) plus a worktree's own HEAD and index, with the settings that tied it to the
// host's layout (core.worktree, core.bare of a bare main repo) taken out.
import { existsSync, lstatSync, realpathSync, statSync } from "node:fs";
import { mkdir, readdir } from "node:fs/promises";
import { basename, dirname, join, relative, resolve } from "node:path";
import { BbError } from "../errors.ts";
import { log } from "../log.ts";
import { run } from "../proc.ts";
import { readRegularFile } from "../read-regular.ts";
import { gitConfigFiles } from "./git-configs.ts";
import { packFolder } from "./pack.ts";

interface LinkedGitDir {
  /** The git dir the .git file names (a worktree's private one, or the repository). */
  gitDir: string;
  /** Where objects, refs and config live: the main repository's git dir for a worktree. */
  commonDir: string;
}

/** Files a linked worktree keeps for itself in its private git dir. */
const PER_WORKTREE = ["HEAD", "index", "ORIG_HEAD", "MERGE_HEAD", "logs/HEAD", "config.worktree"];

/** The git dir `checkout/.git` points at, or null when .git is a folder or absent. Both
 * paths are real (no symlink in them): what was checked is what gets packed. The files
 * that say so are your checkout's and git dir's, read as regular files only: a FIFO
 * there is refused, naming it, rather than waited on (Ctrl-C and all). */
export async function linkedGitDir(checkout: string): Promise<LinkedGitDir | null> {
  const dotGit = join(checkout, ".git");
  if (!existsSync(dotGit) || !lstatSync(dotGit).isFile()) return null;
  const m = /^gitdir: (.+)$/m.exec(await readRegularFile(dotGit));
  if (!m) throw new BbError("USAGE", `${dotGit} is a file but not a "gitdir: PATH" link, so the bottle's copy of ${checkout} would not be a git repository`);
  const named = resolve(checkout, m[1]!.trim());
  if (!existsSync(join(named, "HEAD"))) {
    throw new BbError("USAGE", `${dotGit} points at ${named}, which is not a git directory (a removed worktree, or a moved repository?), so the bottle's copy of ${checkout} would not be a git repository`);
  }
  // A symlink on the way (`gitdir: x`, x -> ../other/.git) must not hide where it leads.
  const gitDir = realpathSync.native(named);
  const common = join(gitDir, "commondir");
  const commonDir = existsSync(common) ? realOrAsIs(resolve(gitDir, (await readRegularFile(common)).trim())) : gitDir;
  await checkPointsBack(checkout, { gitDir, commonDir }, named);
  return { gitDir, commonDir };
}

/** A missing commondir target stays as named: checkPointsBack() refuses it, naming it. */
const realOrAsIs = (path: string) => {
  try {
    return realpathSync.native(path);
  } catch {
    return path;
  }
};

const samePath = (a: string, b: string) => {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
};

const isDir = (path: string) => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

/** Whether `dir` is the .git folder of the folder it is in, whatever the spelling: a
 * case-insensitive file system (macOS, Windows) opens `.GIT` as `.git`. */
function isDotGitFolder(dir: string): boolean {
  if (basename(dir).toLowerCase() === ".git") return true;
  try {
    const [a, b] = [statSync(dir), statSync(join(dirname(dir), ".git"))];
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}

/**
 * The git dir a .git file names is copied into the bottle whole, so the file alone (it is
 * part of the checkout, whoever made it) must not choose it: it could name any folder of
 * yours (~/.aws with a commondir file, another repository's .git). Git links a worktree's
 * and a submodule's git dir back to their checkout (`gitdir` and the repository's
 * worktrees/ list; core.worktree); a git dir made with --separate-git-dir has no link, and
 * is taken when it is a git directory (HEAD, objects/, refs/) that is neither another
 * checkout's .git folder nor a bare repository. `linked` holds real paths; `named` is the
 * path as the .git file wrote it, for the message.
 */
async function checkPointsBack(checkout: string, linked: LinkedGitDir, named: string): Promise<void> {
  const { gitDir, commonDir } = linked;
  const refuse = (why: string, hint = "") =>
    new BbError("USAGE", `${join(checkout, ".git")} names ${named}${named === gitDir ? "" : ` (which is ${gitDir})`} as its git dir, but ${why}, so the bottle's copy of ${checkout} does not take it${hint}`);
  if (gitDir !== commonDir) {
    const back = join(gitDir, "gitdir");
    const pointsBack = existsSync(back) && samePath(resolve(gitDir, (await readRegularFile(back)).trim()), join(checkout, ".git"));
    if (!pointsBack || !samePath(join(commonDir, "worktrees", basename(gitDir)), gitDir)) {
      throw refuse(`that git dir is not a worktree of ${commonDir} whose checkout is ${checkout}`, " (for a moved worktree, `git worktree repair` in the main checkout rewrites its links)");
    }
    return;
  }
  const get = async (key: string) => (await run(["git", "config", "--file", join(gitDir, "config"), "--get", key], { expect: [0, 1] })).stdout.trim();
  const worktree = await get("core.worktree");
  if (worktree) {
    if (!samePath(resolve(gitDir, worktree), checkout)) throw refuse(`its core.worktree is ${worktree}, not ${checkout}`);
  } else if (isDotGitFolder(gitDir)) {
    throw refuse(`that is the .git folder of another checkout (${dirname(gitDir)})`);
  } else if ((await get("core.bare")) === "true") {
    throw refuse("that is a bare repository");
  } else if (!isDir(join(gitDir, "objects")) || !isDir(join(gitDir, "refs"))) {
    throw refuse("it has no objects/ and refs/ folders, so it is no git directory");
  }
}

/**
 * The git config files of `linked` the copy's .git gets, each as [host file, path in the
 * copy's .git]: the repository's config (adjustLinkedConfig() unties it from the host's
 * layout), the worktree's own config.worktree, and its submodules' configs. The caller
 * stages scrubbed copies, and packGitDir() leaves the host files out.
 */
export async function linkedGitConfigs(linked: LinkedGitDir): Promise<[string, string][]> {
  const out: [string, string][] = [
    [join(linked.commonDir, "config"), "config"],
    [join(linked.gitDir, "config.worktree"), "config.worktree"],
  ];
  for (const f of await gitConfigFiles(join(linked.commonDir, "modules"), false)) out.push([f, relative(linked.commonDir, f)]);
  return out.filter(([f]) => isRegularFile(f));
}

const isRegularFile = (path: string) => {
  try {
    return lstatSync(path).isFile();
  } catch {
    return false;
  }
};

/** The copied config of a linked git dir, made a standalone repository's. */
export async function adjustLinkedConfig(configOut: string): Promise<void> {
  const git = (args: string[]) => run(["git", "config", "--file", configOut, ...args], { expect: [0, 5], what: `Cannot adjust the copied ${configOut}` });
  await git(["--unset-all", "core.worktree"]);
  await git(["core.bare", "false"]);
}

/**
 * Pack `linked` as the copy's .git folder into `tarFile`, with names relative to .git (the
 * guest unpacks it there), leaving out its config files (`configs`, linkedGitConfigs()'s
 * answer: the caller stages them scrubbed) and the host files in `leaveOut`. Packed with
 * tar, like the checkout, rather than copied: a git dir can hold thousands of loose
 * objects, and creating files one by one is what costs.
 */
export async function packGitDir(linked: LinkedGitDir, tarFile: string, opts: { configs: [string, string][]; leaveOut: ReadonlySet<string> }): Promise<void> {
  const worktree = linked.gitDir !== linked.commonDir;
  // The main repository's own HEAD, index, reflog and config.worktree are not this worktree's.
  const ownFiles = worktree ? PER_WORKTREE : [];
  const skip = new Set(["config", "worktrees", ...(worktree ? ["config.worktree"] : []), ...ownFiles]); // worktrees/: the other worktrees' private dirs
  const shared = (await readdir(linked.commonDir)).filter((n) => !skip.has(n)).map((n) => `./${n}`);
  const pack = async (from: string, append: boolean, names: string[], exclude: string[] = []) => {
    const { changed } = await packFolder({
      from,
      tarFile,
      names,
      leaveOut: [...exclude.map((e) => join(from, e)), ...opts.configs.map(([f]) => f), ...opts.leaveOut],
      append,
      what: `Cannot pack the git dir ${from}`,
    });
    // git ran meanwhile: the archive is whole, as tar read it.
    if (changed) log.warn(`provision: ${from} changed while it was packed; the bottle has it as tar read it`);
  };
  await mkdir(dirname(tarFile), { recursive: true });
  await pack(linked.commonDir, false, shared, ownFiles.filter((f) => f.includes("/")));
  const own = ownFiles.filter((f) => f !== "config.worktree" && existsSync(join(linked.gitDir, f))).map((f) => `./${f}`);
  if (own.length) await pack(linked.gitDir, true, own);
}
