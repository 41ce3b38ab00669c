// Copying parts of a bottle folder aside and putting them back, as `cp -PpR` and the start
// flow's put-back did: modes and file times kept, symlinks copied as symlinks, never
// followed. The copy is only ever read from, so a put-back cut short (a kill) can be run
// again from it and ends the same.
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { chmod, lstat, lutimes, mkdir, readdir, readlink, rename, rm, rmdir, symlink, utimes } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { copyRegularFile } from "../copy-regular.ts";
import { BbError } from "../errors.ts";
import { refusedBecause } from "../read-regular.ts";

type Kind = "l" | "d" | "f";

/** What `path` is (a symlink, a folder, a regular file), or null when nothing is there. */
export async function kindOf(path: string): Promise<Kind | null> {
  const st = await lstat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT" || e.code === "ENOTDIR") return null;
    throw e;
  });
  if (!st) return null;
  if (st.isSymbolicLink()) return "l";
  if (st.isDirectory()) return "d";
  if (st.isFile()) return "f";
  // A FIFO or device in a bottle folder is none of bot-bottle's making: refused rather
  // than copied as something else, or waited on.
  throw new BbError("STATE", `${path} is not a file, folder or symlink: bot-bottle never makes one there, so it does not copy it aside; remove it`, { details: { path } });
}

interface CopyTreeHooks {
  /** Called for each file judged a regular file, before it is opened: where tests swap in
   * what a copy must not wait on. */
  judged?: (path: string) => Promise<void>;
}

/** Copy `from` to `to` (nothing there yet): a folder whole, a file or symlink as it is. */
export async function copyTree(from: string, to: string, hooks: CopyTreeHooks = {}): Promise<void> {
  const kind = await kindOf(from);
  const st = await lstat(from);
  if (kind === "l") {
    await symlink(await readlink(from), to);
    await lutimes(to, st.atimeMs / 1000, st.mtimeMs / 1000).catch(() => {}); // not every filesystem keeps a link's times
  } else if (kind === "d") {
    await mkdir(to);
    for (const name of await readdir(from)) await copyTree(join(from, name), join(to, name), hooks);
    await chmod(to, st.mode & 0o7777);
    await utimes(to, st.atimeMs / 1000, st.mtimeMs / 1000);
  } else {
    await hooks.judged?.(from);
    // Judged a file, but the name may hold a FIFO (or a link) by now: the file is copied
    // from what the name holds when opened (not followed), refused unless a regular file.
    const copied = await copyRegularFile(from, to, { flags: constants.O_NOFOLLOW }).catch((e: unknown) => {
      if (!refusedBecause(e)) throw e;
      throw new BbError("STATE", `${(e as BbError).message}: bot-bottle never makes one there, so it does not copy it aside; remove it`, { cause: e, details: { path: from } });
    });
    await utimes(to, copied.atimeMs / 1000, copied.mtimeMs / 1000);
  }
}

/** Put a copy of `from` at `to` by rename from a copy beside `to`: a daemon
 * reading `to` sees the old file or the new one, never half of one. */
async function placeCopy(from: string, to: string): Promise<void> {
  const tmp = join(dirname(to), `.${basename(to)}.put-back-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    await copyTree(from, tmp);
    await rename(tmp, to);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Make `to` hold what the copy `from` holds, or nothing when the copy has nothing there. A
 * folder there in both is filled in place, not replaced (a running bundle has it
 * bind-mounted): what the copy lacks, holds as another kind, or is a symlink goes first (so
 * no rename lands through a link), then each file goes in by rename and each folder gets
 * its mode back.
 */
export async function putBackEntry(from: string, to: string): Promise<void> {
  const want = await kindOf(from);
  const have = await kindOf(to);
  if (want === "d" && have === "d") {
    await pruneTo(from, to);
    await fillFrom(from, to);
    return;
  }
  // A file goes back by rename over the one there; anything else is removed first.
  if (!(have === "f" && (want === "f" || want === "l"))) await rm(to, { recursive: true, force: true });
  if (want) await placeCopy(from, to);
}

async function pruneTo(from: string, to: string): Promise<void> {
  for (const name of await readdir(to)) {
    const here = join(to, name);
    const have = await kindOf(here);
    if (have === "d" && (await kindOf(join(from, name))) === "d") await pruneTo(join(from, name), here);
    else if (have === "l" || have !== (await kindOf(join(from, name)))) await rm(here, { recursive: true, force: true });
  }
}

async function fillFrom(from: string, to: string): Promise<void> {
  for (const name of await readdir(from)) {
    const src = join(from, name);
    const dst = join(to, name);
    if ((await kindOf(src)) === "d") {
      if ((await kindOf(dst)) !== "d") await mkdir(dst);
      await fillFrom(src, dst);
    } else {
      await placeCopy(src, dst);
    }
  }
  await chmod(to, (await lstat(from)).mode & 0o7777);
}

/** Give the folder `path` the mode `mode`, or, with none (it was not there), remove it if
 * it is there and empty. */
export async function putBackMode(path: string, mode: number | null): Promise<void> {
  if (mode !== null) {
    if ((await kindOf(path)) === "d") await chmod(path, mode);
    return;
  }
  if ((await kindOf(path)) === "d") await rmdir(path).catch(() => {}); // made by bb-prepare, still empty
}
