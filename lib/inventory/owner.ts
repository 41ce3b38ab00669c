// The owner record of a bottle: `<bottle dir>/owner.json`, written by the start flow while
// it runs, so list and cleanup can tell a bottle that is still being built (nothing running
// yet) from the leftovers of one whose flow died.
//
//   {"pid": 4242, "startedAt": "2026-05-27T18:00:00.000Z", "procStart": "123456"}
//
// `procStart` (Linux only) is field 22 of /proc/<pid>/stat, the process start time in clock
// ticks since boot: a pid the kernel reused for another process has a different one, so a
// dead owner is not mistaken for a live one. A shell may write the record without it
// (`printf '{"pid":%d,"startedAt":"%s"}' $$ "$(date -u +%FT%TZ)"`); then only the pid is
// checked.
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rm, stat, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import process from "node:process";
import { z } from "zod/v3";
import { BbError } from "../errors.ts";
import { createFileWhole, writeFileAtomic } from "../fs-atomic.ts";
import { readRegularFile } from "../read-regular.ts";

export const OWNER_FILE = "owner.json";

/** Written by the start flow in place of the owner record when it hands a bottle over to
 * you (keep=true): list and cleanup then keep it, stopped or not, until you remove it. */
export const KEPT_FILE = "kept";

export const Owner = z.object({
  pid: z.number().int().positive(),
  startedAt: z.string(),
  procStart: z.string().optional(),
  /** In a breaker's `reaping` only: which of its process's removals took it (see reap). */
  token: z.string().optional(),
});
export type Owner = z.infer<typeof Owner>;

/** Field 22 (starttime) of /proc/<pid>/stat, or null where there is no procfs or no such pid. */
export const procStartTime = (pid: number): string | null => procStatField(pid, 22);

/** Field `n` (3 on) of /proc/<pid>/stat, or null where there is no procfs or no such pid. */
export function procStatField(pid: number, n: number): string | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces or ")".
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return rest[n - 3] ?? null;
}

/** The record naming process `pid` as it is now (its start time too, where there is procfs). */
export function ownerRecord(pid: number, now: Date = new Date()): Owner {
  const procStart = procStartTime(pid);
  return { pid, startedAt: now.toISOString(), ...(procStart ? { procStart } : {}) };
}

/** Record `pid` as the owner of the bottle in `dir` (atomically: readers never see half a file). */
export async function writeOwner(dir: string, pid: number, now: Date = new Date()): Promise<Owner> {
  const owner = ownerRecord(pid, now);
  await writeFileAtomic(join(dir, OWNER_FILE), JSON.stringify(owner) + "\n");
  return owner;
}

/**
 * Claim the bottle in `dir` for the start flow `pid`: the owner record is created only
 * where there is none (createFileWhole: link(2) fails on an existing name), so of two flows given one slug
 * at the same moment one gets it and the other a BUSY error naming it. A record whose
 * process is gone (a flow that was killed) is replaced; one naming `pid` itself stands.
 */
export async function claimOwner(dir: string, pid: number): Promise<Owner> {
  const owner = ownerRecord(pid);
  const procStart = owner.procStart ?? null;
  const path = join(dir, OWNER_FILE);
  for (const deadline = Date.now() + 5_000; Date.now() < deadline; ) {
    if (await createFileWhole(path, JSON.stringify(owner) + "\n")) return owner;
    const held = await readOwner(dir);
    if (held && held.pid === pid && (held.procStart ?? procStart) === procStart) return held;
    if (held && ownerAlive(held)) throw heldBy(dir, held);
    await removeIfDead(path);
  }
  throw new BbError("STATE", `Cannot claim bottle ${basename(dir)}: its owner record ${path} keeps changing`);
}

/**
 * Refuse (BUSY) to touch the bottle in `dir` while a live start flow holds it: what a
 * caller without a claim of its own (bb-prepare without --owner-pid) would rewrite there
 * is that flow's, whose "n" would put its copy back over it (lib/prepare/before.ts).
 */
export async function refuseHeld(dir: string): Promise<void> {
  const held = await readOwner(dir);
  if (held && ownerAlive(held)) throw heldBy(dir, held);
}

const heldBy = (dir: string, held: Owner) =>
  new BbError("BUSY", `Bottle ${basename(dir)} belongs to another start flow (pid ${held.pid}, since ${held.startedAt}), which is starting or running it: wait until it is up (\`just start slug=${basename(dir)}\` then attaches beside it), or end that flow first`, {
    details: { pid: held.pid, startedAt: held.startedAt },
  });

/**
 * Remove the owner record at `path` if its flow is gone (or it is broken), holding a
 * second lock (the breaker beside it, which scripts/flow-owner.sh's take_over takes too)
 * and reading it again there: two flows that both judged it dead would otherwise both
 * remove it, the second one the claim the first just made.
 */
async function removeIfDead(path: string): Promise<void> {
  const breaker = `${path}.break`;
  if (!(await tryBreaker(breaker))) {
    await new Promise((r) => setTimeout(r, 5));
    return;
  }
  try {
    const text = await readRegularFile(path).catch(() => null);
    const held = text === null ? null : parseOwner(text);
    if (text !== null && !(held && ownerAlive(held))) await rm(path, { force: true });
  } finally {
    await rm(breaker, { recursive: true, force: true });
  }
}

/** Remove the owner record in `dir` if it names `pid` (a claim given back). */
export async function releaseOwner(dir: string, pid: number): Promise<void> {
  if ((await readOwner(dir))?.pid === pid) await rm(join(dir, OWNER_FILE), { force: true });
}

/** The owner record in `text`; null when it is not one. */
function parseOwner(text: string): Owner | null {
  try {
    const parsed = Owner.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** The owner record of the bottle in `dir`; null when there is none or it is unreadable. */
export const readOwner = (dir: string): Promise<Owner | null> => readOwnerFile(join(dir, OWNER_FILE));

/** An owner record kept under another name (lib/prepare/before.ts: the flow a copy is for). */
export async function readOwnerFile(path: string): Promise<Owner | null> {
  const text = await readRegularFile(path).catch(() => null);
  return text === null ? null : parseOwner(text);
}

/** The one-letter state of a process in /proc/<pid>/stat (R, S, Z, ...), or null without procfs. */
export function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) || null;
  } catch {
    return null;
  }
}

/** True while the owner process exists and (where recorded) is the same process. */
export function ownerAlive(owner: Owner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (e) {
    // EPERM: the process exists but belongs to another user.
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  // A zombie answers kill -0 but is dead: its start flow was killed and awaits reaping.
  if (procState(owner.pid) === "Z") return false;
  if (owner.procStart === undefined) return true;
  const now = procStartTime(owner.pid);
  // No procfs (macOS): the pid check is all there is.
  return now === null ? true : now === owner.procStart;
}

// A breaker: a short-held lock folder between bot-bottle's processes (owner.json.break
// beside a bottle's owner record, <lock>.break beside a lib/dir-lock.ts lock), with its
// holder's owner record inside, and the one rule for removing one its holder left behind.
// scripts/flow-owner.sh (try_lock, stale_lock, reap_lock) is the same in bash, and takes
// the same owner.json.break: change both together.

/** A breaker without a record yet is its taker's for this long (it writes one at once):
 * older, its taker was killed between the two steps. */
const RECORDLESS_MS = 2_000;

/** Called by tryBreaker between judging a breaker left and removing it: a test's hold
 * there, to replace the breaker meanwhile (breaker.test.ts). */
type Judged = (lock: string) => Promise<void>;

/**
 * Take the breaker `lock` for this process: true once made, with this process's record in
 * it; false while a live process holds it. One left by a process that is gone is removed
 * first (reap). Throws (ENOENT) once the folder it goes in is gone.
 */
export function tryBreaker(lock: string, judged?: Judged): Promise<boolean> {
  return takeBreaker(lock, undefined, judged);
}

/** tryBreaker, its record naming `token` too where given (a `reaping`). */
async function takeBreaker(lock: string, token?: string, judged?: Judged): Promise<boolean> {
  for (;;) {
    try {
      await mkdir(lock);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const key = await staleKey(lock);
      if (key === null) return false;
      await judged?.(lock);
      if (!(await reap(lock, key))) return false;
      continue;
    }
    const owner = { ...ownerRecord(process.pid), ...(token ? { token } : {}) };
    await writeFileAtomic(join(lock, OWNER_FILE), JSON.stringify(owner) + "\n");
    return true;
  }
}

/** The mark a remover leaves in its `reaping` once it is done with it (see reap). */
const doneMark = (reaping: string, token: string) => join(reaping, `done.${token}`);

/**
 * What makes `lock` one its holder left, or null while it is held (or gone): its record, as
 * read before it was judged, naming a process that is gone (or broken), or a `reaping` its
 * remover marked done; without a record, the folder's inode once it is older than
 * RECORDLESS_MS.
 */
async function staleKey(lock: string): Promise<string | null> {
  const text = await readRegularFile(join(lock, OWNER_FILE)).catch(() => null);
  if (text !== null) {
    const held = parseOwner(text);
    const done = held?.token !== undefined && existsSync(doneMark(lock, held.token));
    return held && ownerAlive(held) && !done ? null : `record:${text}`;
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
 * name, it could be another remover's). This remover then marks it done (done.<token>,
 * the token its record names: one process runs many removals, so its pid alone cannot
 * say this one is over; a mark that lands in another remover's `reaping` names no token
 * of theirs): should the fresh folder's holder die too, the next remover, in this process
 * or any other, may remove this `reaping` as left, where a live pid would keep it.
 */
async function reap(lock: string, key: string): Promise<boolean> {
  const reaping = join(lock, "reaping");
  const token = randomUUID();
  // Gone meanwhile (ENOENT): removed by its holder or another remover, nothing to do here.
  const held = await takeBreaker(reaping, token).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return false;
    throw e;
  });
  if (!held) return false;
  try {
    const text = await readRegularFile(join(lock, OWNER_FILE)).catch(() => null);
    const now = text !== null ? `record:${text}` : await stat(lock).then((st) => `inode:${st.ino}`, () => null);
    if (now !== key) return false;
    await rm(lock, { recursive: true, force: true });
    return true;
  } finally {
    // Gone with the folder (removed here or by its holder): nothing to mark.
    await writeFile(doneMark(reaping, token), "").catch(() => {});
  }
}
