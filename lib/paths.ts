// Where bot-bottle keeps things on the host, following the XDG base-directory spec so a
// user can move them with the usual variables.
import { existsSync, statSync } from "node:fs";
import { chmod, lchown, lstat, mkdir, readdir, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { BbError } from "./errors.ts";

function xdg(varName: string, fallback: string): string {
  const v = process.env[varName];
  return v && v.startsWith("/") ? v : join(homedir(), fallback);
}

/** Root of all bottles' state: $BB_STATE_DIR, else $XDG_STATE_HOME/bot-bottle. */
function defaultStateRoot(): string {
  const override = process.env.BB_STATE_DIR;
  if (override) return checkedRoot(override, "$BB_STATE_DIR");
  return join(xdg("XDG_STATE_HOME", ".local/state"), "bot-bottle");
}

/** The state root a tool was given with --state-dir, else the default one. */
export function stateRootFrom(flag: string | undefined): string {
  return flag === undefined ? defaultStateRoot() : checkedRoot(flag, "--state-dir");
}

/** A state root that can be one: not empty (which would mean the current folder), and a
 * folder if it exists. */
function checkedRoot(path: string, what: string): string {
  if (path.trim() === "") throw new BbError("USAGE", `${what} is empty: give the folder bot-bottle keeps its bottles in`);
  const abs = resolve(path);
  if (existsSync(abs) && !statSync(abs).isDirectory()) throw new BbError("USAGE", `${what} ${path} is not a folder`);
  return abs;
}

/** Cache root ($XDG_CACHE_HOME/bot-bottle): .smolmachine artifacts, built bundles. */
export function defaultCacheRoot(): string {
  const override = process.env.BB_CACHE_DIR;
  if (override) return resolve(override);
  return join(xdg("XDG_CACHE_HOME", ".cache"), "bot-bottle");
}

/** One bottle's folder below the state root. */
export function bottleDir(stateRoot: string, slug: string): string {
  return join(stateRoot, "bottles", slug);
}

/** The repository root (this file lives in <root>/lib, or <root>/dist when bundled). */
export function repoRoot(): string {
  const here = new URL(".", import.meta.url).pathname;
  return resolve(here, "..");
}

/**
 * `mkdir -p`, one level at a time. Node's recursive mkdir never returns where creating a
 * folder fails with ENOENT although its parent exists (below /proc: it retries the parent
 * forever); here a second ENOENT is an error. Folders made take `mode` (cut by the umask).
 */
export async function makeDirs(dir: string, mode = 0o777): Promise<void> {
  const once = async () => {
    try {
      await mkdir(dir, { mode });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      if (!(await stat(dir)).isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: "ENOTDIR" });
    }
  };
  try {
    await once();
  } catch (e) {
    const parent = dirname(dir);
    if ((e as NodeJS.ErrnoException).code !== "ENOENT" || parent === dir) throw e;
    await makeDirs(parent, mode);
    await once();
  }
}

/** Make `dir` where there is none (its parents as needed): true when this call made it,
 * false when it was there. mkdir is atomic, so of two callers racing for one name exactly
 * one gets true. */
export async function makeNewDir(dir: string, mode = 0o700): Promise<boolean> {
  await makeDirs(dirname(dir), mode);
  try {
    await mkdir(dir, { mode });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
}

/** Make `dir` (and its parents) and give it exactly `mode`: mkdir's mode is cut by the
 * umask and leaves an existing folder (a resumed bottle's) as it was. */
export async function dirWithMode(dir: string, mode: number): Promise<string> {
  await makeDirs(dir, mode);
  await chmod(dir, mode);
  return dir;
}

/**
 * Give everything below `dir` to `owner` where it belongs to someone else, without
 * following symlinks; `dir` itself keeps its owner. Returns how many entries changed
 * hands. Needs the right to chown (root): bb-bundle uses it when a daemon's uid is not
 * the one that made the files.
 */
export async function adoptTree(dir: string, owner: { uid: number; gid: number }): Promise<number> {
  let changed = 0;
  const visit = async (path: string): Promise<void> => {
    for (const entry of await readdir(path, { withFileTypes: true })) {
      const child = join(path, entry.name);
      const st = await lstat(child);
      if (st.uid !== owner.uid || st.gid !== owner.gid) {
        await lchown(child, owner.uid, owner.gid);
        changed++;
      }
      if (st.isDirectory()) await visit(child);
    }
  };
  await visit(dir);
  return changed;
}
