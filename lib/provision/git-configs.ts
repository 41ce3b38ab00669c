// The git config files a copied tree carries (each one may hold a host credential, so the
// copy gets a scrubbed version of each), and the tar arguments that leave host files out
// of a pack.
import { existsSync } from "node:fs";
import { relative, sep } from "node:path";
import { BbError } from "../errors.ts";
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

/** A name as a tar pattern that matches only itself. */
const literal = (name: string) => name.replace(/[\\*?[]/g, "\\$&");

/**
 * tar's arguments (and the stdin they read) to leave out those of `paths` that lie below
 * `root`, for a `tar -C root ... ./names` pack.
 */
export function leavingOut(root: string, paths: Iterable<string>): { args: string[]; input?: string } {
  const names: string[] = [];
  for (const p of paths) {
    const rel = relative(root, p);
    if (rel === "" || rel.startsWith(`..${sep}`) || rel === "..") continue;
    if (rel.includes("\n")) throw new BbError("USAGE", `Cannot copy ${root}: ${JSON.stringify(p)} has a line break in its name, and must be left out of the copy`);
    names.push(literal(`./${rel}`));
  }
  return names.length ? { args: ["-X", "-"], input: names.join("\n") + "\n" } : { args: [] };
}
