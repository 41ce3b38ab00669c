// A short-held lock folder between bot-bottle's processes (a "breaker": owner.json.break
// beside a bottle's owner record, <lock>.break beside a lib/dir-lock.ts lock), with its
// holder's owner record inside, and the one rule for removing one its holder left behind.
// scripts/flow-owner.sh (try_lock, stale_lock, reap_lock) is the same in bash, and takes
// the same owner.json.break: change both together.
import { mkdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { OWNER_FILE, ownerAlive, parseOwner, writeOwner } from "./owner.ts";
import { readRegularFile } from "../read-regular.ts";

/** A breaker without a record yet is its taker's for this long (it writes one at once):
 * older, its taker was killed between the two steps. */
const RECORDLESS_MS = 2_000;

/**
 * Take the breaker `lock` for this process: true once made, with this process's record in
 * it; false while a live process holds it. One left by a process that is gone is removed
 * first (reap). Throws (ENOENT) once the folder it goes in is gone.
 */
export async function tryBreaker(lock: string): Promise<boolean> {
  for (;;) {
    try {
      await mkdir(lock);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const key = await staleKey(lock);
      if (key === null || !(await reap(lock, key))) return false;
      continue;
    }
    await writeOwner(lock, process.pid);
    return true;
  }
}

/**
 * What makes `lock` one its holder left, or null while it is held (or gone): its record, as
 * read before it was judged, naming a process that is gone (or broken); without a record,
 * the folder's inode once it is older than RECORDLESS_MS.
 */
async function staleKey(lock: string): Promise<string | null> {
  const text = await readRegularFile(join(lock, OWNER_FILE)).catch(() => null);
  if (text !== null) {
    const held = parseOwner(text);
    return held && ownerAlive(held) ? null : `record:${text}`;
  }
  const st = await stat(lock).catch(() => null);
  return st && Date.now() - st.mtimeMs > RECORDLESS_MS ? `inode:${st.ino}` : null;
}

/**
 * Remove the breaker judged left (`key`), and only that one: between the judgement and a
 * plain rm another process may have removed it and taken a fresh one there, which the rm
 * would remove. So the remover takes the breaker's own breaker (`reaping` inside it, left
 * ones removed the same way) and judges again there: the record judged (a dead process's,
 * which no other folder holds), or the inode of a folder still without one, is the folder
 * judged, which nobody else removes while this holds its `reaping`. Otherwise `reaping`
 * stays in the fresh folder, whose live holder removes it with the folder (removed here by
 * name, it could be another remover's).
 */
async function reap(lock: string, key: string): Promise<boolean> {
  // Gone meanwhile (ENOENT): removed by its holder or another remover, nothing to do here.
  const held = await tryBreaker(join(lock, "reaping")).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return false;
    throw e;
  });
  if (!held) return false;
  const text = await readRegularFile(join(lock, OWNER_FILE)).catch(() => null);
  const now = text !== null ? `record:${text}` : await stat(lock).then((st) => `inode:${st.ino}`, () => null);
  if (now !== key) return false;
  await rm(lock, { recursive: true, force: true });
  return true;
}
