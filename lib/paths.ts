// Where bot-bottle keeps things on the host, following the XDG base-directory spec so a
// user can move them with the usual variables.
import { existsSync, statSync } from "node:fs";
import { chmod, lstat, mkdir, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import process from "node:process";
import { BbError } from "./errors.ts";

function xdg(varName: string, fallback: string): string {
  const v = process.env[varName];
  return v && v.startsWith("/") ? v : join(homedir(), fallback);
}

/** Root of all bottles' state: $BB_STATE_DIR, else $XDG_STATE_HOME/bot-bottle. */
function defaultStateRoot(): string {
  const override = process.env.BB_STATE_DIR;
  // Set but empty is refused as --state-dir "" is: most often a variable that was meant to
  // hold a folder and did not, and falling back would put bottles somewhere unasked.
  if (override !== undefined) return checkedRoot(override, "$BB_STATE_DIR", "unset it or give the folder bot-bottle keeps its bottles in");
  const root = join(xdg("XDG_STATE_HOME", ".local/state"), "bot-bottle");
  refuseForeignRoot(root, `state root ${root}`);
  return root;
}

/** The state root a tool was given with --state-dir, else the default one. */
export function stateRootFrom(flag: string | undefined): string {
  return flag === undefined ? defaultStateRoot() : checkedRoot(flag, "--state-dir", "give the folder bot-bottle keeps its bottles in");
}

/**
 * The words each state root was given in ("$BB_STATE_DIR /x", "--state-dir x"), by its
 * absolute path. A root that cannot hold bottles is found deep in the work (a scan, a slug
 * being minted), where only the path is at hand, and its error names the root as the user
 * gave it (stateRootError): kept here rather than passed along with every root, which would
 * widen scan's, collect's and prepare's options for an error message's sake.
 */
const rootsGiven = new Map<string, string>();

/** A state root that can be one: not empty (which would mean the current folder), and a
 * folder if it exists. */
function checkedRoot(path: string, what: string, whenEmpty: string): string {
  if (path.trim() === "") throw new BbError("USAGE", `${what} is empty: ${whenEmpty}`);
  const abs = resolve(path);
  if (existsSync(abs) && !statSync(abs).isDirectory()) throw new BbError("USAGE", `${what} ${path} is not a folder`);
  rootsGiven.set(abs, `${what} ${path}`);
  refuseForeignRoot(abs, `${what} ${path}`);
  return abs;
}

/**
 * A state root (or its bottles/ folder) that another user owns, or that every user may
 * write to (BB_STATE_DIR=/tmp/bb made by someone else, or /tmp itself), is refused: whoever
 * can write there can swap a bottle's plan, policy or owner record, which the tools then
 * act on as yours. Folders bot-bottle makes are 0700 and yours, so this only ever refuses
 * one it did not make.
 */
function refuseForeignRoot(abs: string, given: string): void {
  const me = process.geteuid?.();
  if (me === undefined) return; // no uids (Windows)
  for (const dir of [abs, join(abs, "bottles")]) {
    let st;
    try {
      st = statSync(dir);
    } catch {
      return; // not there yet: bot-bottle makes it, 0700
    }
    const what = dir === abs ? given : `${given}: its bottles/ folder`;
    if (st.uid !== me) {
      throw new BbError("USAGE", `${what} belongs to uid ${st.uid}, not to you (uid ${me}): its owner could change your bottles' plans and keys; use a folder of your own`, { details: { stateRoot: abs, path: dir } });
    }
    if (st.mode & 0o002) {
      throw new BbError("USAGE", `${what} is writable by every user (mode ${(st.mode & 0o7777).toString(8)}): any of them could change your bottles' plans and keys; run chmod o-w ${dir}, or use a folder of your own`, { details: { stateRoot: abs, path: dir } });
    }
  }
}

/**
 * The usage error for a state root whose folders cannot be read or made, from the fs error
 * `e` of a path at, above (the root being made) or below `root`; any other error is
 * returned as it is. Only called once something failed: the happy path stats nothing more.
 */
export function stateRootError(root: string, e: unknown): unknown {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.code !== "string" || typeof err.path !== "string") return e;
  const abs = resolve(root);
  const given = rootsGiven.get(abs) ?? `state root ${abs}`;
  const below = (p: string) => p.startsWith(abs + sep);
  const fail = (message: string) => new BbError("USAGE", message, { cause: e, details: { stateRoot: abs, path: err.path } });
  if (err.code === "ENOTDIR") {
    // The error names the path asked for; the file in the way is the first one that is there.
    let culprit = resolve(err.path);
    while (!existsSync(culprit) && dirname(culprit) !== culprit) culprit = dirname(culprit);
    if (culprit === abs) return fail(`${given} is not a folder`);
    if (below(culprit)) return fail(`${given}: ${relative(abs, culprit)} is not a folder`);
    return fail(`${given} cannot be made: ${culprit} is not a folder`);
  }
  // "ENOENT: no such file or directory, mkdir '/x'" (node and deno alike): the words only.
  const why = err.message.replace(/^[A-Z]+: /, "").replace(/, \w+ '.*'$/s, "");
  const path = resolve(err.path);
  if (!below(path)) return fail(`${given} cannot be made: ${why}`);
  return fail(`${given}: ${relative(abs, path)} cannot be ${err.syscall === "mkdir" ? "made" : "read"}: ${why}`);
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
async function makeDirs(dir: string, mode = 0o777): Promise<void> {
  const once = async () => {
    try {
      await mkdir(dir, { mode });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      if (!(await stat(dir)).isDirectory()) {
        throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: "ENOTDIR", path: dir, syscall: "mkdir" });
      }
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

/** Make `dir`, mode 0700, where there is none (its parents as needed): true when this call made it,
 * false when it was there. mkdir is atomic, so of two callers racing for one name exactly
 * one gets true. */
export async function makeNewDir(dir: string): Promise<boolean> {
  const mode = 0o700;
  await makeDirs(dirname(dir), mode);
  try {
    await mkdir(dir, { mode });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
}

/** Bottle `slug`'s folder below the state root, made by this call (true) or there already
 * (makeNewDir); a root that cannot hold it is a usage error naming the root. */
export async function makeBottleDir(stateRoot: string, slug: string): Promise<boolean> {
  try {
    return await makeNewDir(bottleDir(stateRoot, slug));
  } catch (e) {
    throw stateRootError(stateRoot, e);
  }
}

/**
 * Make `dir` (and its parents) and give it exactly `mode`: mkdir's mode is cut by the
 * umask and leaves an existing folder (a resumed bottle's) as it was. A symlink there is
 * refused, not followed: chmod would give its target, which could be anywhere, the mode
 * (a shared 0o1770, say), and a bind mount would hand the bundle that target. With
 * `owners`, a folder there already must be yours or belong to one of those uids (ones
 * bot-bottle gives it to): one someone else made before bot-bottle did is theirs to read
 * and change whatever its mode.
 */
export async function dirWithMode(dir: string, mode: number, owners?: readonly number[]): Promise<string> {
  await makeDirs(dir, mode);
  const st = await lstat(dir);
  if (st.isSymbolicLink()) {
    throw new BbError("STATE", `${dir} is a symlink, which bot-bottle never makes there: not following it; remove it and run again`, { details: { path: dir } });
  }
  const me = process.geteuid?.();
  if (owners && me !== undefined && st.uid !== me && !owners.includes(st.uid)) {
    const also = owners.length ? ` or to the uid bot-bottle gives it to (${owners.join(", ")})` : "";
    throw new BbError("STATE", `${dir} belongs to uid ${st.uid}, not to you (uid ${me})${also}: bot-bottle did not make it, and its owner could change what is kept there; remove it and run again`, { details: { path: dir } });
  }
  await chmod(dir, mode);
  return dir;
}
