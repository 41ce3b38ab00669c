// The git config files a copied tree carries (each one may hold a host credential, so the
// copy gets a scrubbed version of each).
import { existsSync } from "node:fs";
import { run } from "../proc.ts";

/**
 * Files named config or config.worktree below `root` (only inside .git folders when
 * `insideDotGit`: a repository's, a submodule's under .git/modules, a nested clone's).
 * Regular files only: tar keeps a symlink as a link, so what one points at is never copied.
 */
export async function gitConfigFiles(root: string, insideDotGit: boolean): Promise<string[]> {
  if (!existsSync(root)) return [];
  const where = insideDotGit ? ["-path", "*/.git/*"] : [];
  const r = await run(["find", root, ...where, "-type", "f", "(", "-name", "config", "-o", "-name", "config.worktree", ")", "-print0"], {
    // 1: a folder find may not enter (tar fails on it too, naming it).
    expect: [0, 1],
    what: `Cannot look for git config files in ${root}`,
  });
  return r.stdout.split("\0").filter(Boolean);
}
