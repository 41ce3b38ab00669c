// The git config files a copied tree carries (each one may hold a host credential, so the
// copy gets a scrubbed version of each).
import { existsSync } from "node:fs";
import { dirname, join, sep } from "node:path";
import { run } from "../proc.ts";

/** Whether `dir` is a git dir by what it holds, whatever its name: a bare repository
 * (mirror.git/) or a worktree's private dir has no .git folder around it. */
const isGitDir = (dir: string) => existsSync(join(dir, "HEAD")) && (existsSync(join(dir, "objects")) || existsSync(join(dir, "commondir")));

/**
 * Files named config or config.worktree below `root` (only a git dir's when `gitDirsOnly`:
 * inside a .git folder, as a repository's, a submodule's under .git/modules or a nested
 * clone's are, or beside HEAD and objects/ as in a bare repository).
 * Regular files only: tar keeps a symlink as a link, so what one points at is never copied.
 */
export async function gitConfigFiles(root: string, gitDirsOnly: boolean): Promise<string[]> {
  if (!existsSync(root)) return [];
  const r = await run(["find", root, "-type", "f", "(", "-name", "config", "-o", "-name", "config.worktree", ")", "-print0"], {
    // 1: a folder find may not enter (tar fails on it too, naming it).
    expect: [0, 1],
    what: `Cannot look for git config files in ${root}`,
  });
  const files = r.stdout.split("\0").filter(Boolean);
  return gitDirsOnly ? files.filter((f) => f.toLowerCase().includes(`${sep}.git${sep}`) || isGitDir(dirname(f))) : files;
}
