// A lock between bot-bottle's own processes on one host: a folder (mkdir is atomic) with
// its holder's owner record in it (lib/inventory/owner.ts: pid, and on Linux the process
// start time, so a reused pid is not taken for the holder). A lock whose holder is gone
// (killed while holding it) is cleared by the next taker.
import { mkdir, rm, stat } from "node:fs/promises";
import process from "node:process";
import { ownerAlive, readOwner, tryBreaker, writeOwner, type Owner } from "./inventory/owner.ts";

export interface DirLockOptions {
  /** How long to wait for a live holder before giving up with `busy`'s error. */
  waitMs: number;
  /** A lock older than this is taken for abandoned whatever its record says: without
   * procfs (macOS) a reused pid looks alive. Longer than the lock is ever held. */
  staleMs: number;
  /** The error to throw once `waitMs` has passed; `holder` as its record says (null: none yet). */
  busy: (holder: Owner | null) => Error;
  /** Called once when the lock is found held, before waiting (to say why nothing happens). */
  onWait?: (holder: Owner | null) => void;
  /** Whether a holder as its record says still runs (default: ownerAlive). Passed in by a
   * test that holds a taker between reading a record and judging it (dir-lock.test.ts). */
  holderAlive?: (holder: Owner) => boolean | Promise<boolean>;
  /** Stop waiting (throwing its reason) once this fires: a Ctrl-C. */
  signal?: AbortSignal;
}

/** Run `fn` holding the lock folder `lock`; it goes when `fn` ends, however it ends. */
export async function withDirLock<T>(lock: string, opts: DirLockOptions, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + opts.waitMs;
  let told = false;
  for (;;) {
    try {
      await mkdir(lock);
      await writeOwner(lock, process.pid);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      if (await abandoned(lock, opts)) {
        await clearAbandoned(lock, opts);
        continue;
      }
      opts.signal?.throwIfAborted();
      if (Date.now() > deadline) throw opts.busy(await readOwner(lock));
      if (!told) opts.onWait?.(await readOwner(lock));
      told = true;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  try {
    return await fn();
  } finally {
    await underBreaker(lock, () => rm(lock, { recursive: true, force: true }));
  }
}

/**
 * Run `fn` holding the breaker of `lock` (a folder beside it), which both judging a lock
 * abandoned and removing it take, and so does its holder to release it: a taker that read
 * a holder's record, then found that holder gone, would otherwise remove the lock a live
 * taker made after the holder released its own (seen with a dozen takers at once). The
 * start flow's teardown takes it too (scripts/flow-owner.sh clear_dead_lock); one its taker
 * left is removed by the rule of inventory/owner.ts's tryBreaker.
 */
async function underBreaker(lock: string, fn: () => Promise<void>): Promise<void> {
  const breaker = `${lock}.break`;
  while (!(await tryBreaker(breaker))) await new Promise((r) => setTimeout(r, 5));
  try {
    await fn();
  } finally {
    await rm(breaker, { recursive: true, force: true });
  }
}

const clearAbandoned = (lock: string, opts: DirLockOptions) =>
  underBreaker(lock, async () => {
    if (await abandoned(lock, opts)) await rm(lock, { recursive: true, force: true });
  });

const ageOf = (path: string) => stat(path).then((st) => Date.now() - st.mtimeMs, () => 0);

/** A lock whose holder is gone (the owner record's check, pid reuse included), that never
 * got a record in 5 s (its holder was killed between the two steps), or older than `staleMs`. */
async function abandoned(lock: string, opts: DirLockOptions): Promise<boolean> {
  const age = await ageOf(lock);
  if (age > opts.staleMs) return true;
  const holder = await readOwner(lock);
  return holder ? !(await (opts.holderAlive ?? ownerAlive)(holder)) : age > 5_000;
}
