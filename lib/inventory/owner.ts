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
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { z } from "zod/v3";
import { writeFileAtomic } from "../fs-atomic.ts";

export const OWNER_FILE = "owner.json";

/** Written by the start flow in place of the owner record when it hands a bottle over to
 * you (keep=true): list and cleanup then keep it, stopped or not, until you remove it. */
export const KEPT_FILE = "kept";

export const Owner = z.object({
  pid: z.number().int().positive(),
  startedAt: z.string(),
  procStart: z.string().optional(),
});
export type Owner = z.infer<typeof Owner>;

/** Field 22 (starttime) of /proc/<pid>/stat, or null where there is no procfs or no such pid. */
export function procStartTime(pid: number): string | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces or ")".
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return rest[22 - 3] ?? null;
}

/** Record `pid` as the owner of the bottle in `dir` (atomically: readers never see half a file). */
export async function writeOwner(dir: string, pid: number, now: Date = new Date()): Promise<Owner> {
  const procStart = procStartTime(pid);
  const owner: Owner = { pid, startedAt: now.toISOString(), ...(procStart ? { procStart } : {}) };
  await writeFileAtomic(join(dir, OWNER_FILE), JSON.stringify(owner) + "\n");
  return owner;
}

/** The owner record of the bottle in `dir`; null when there is none or it is unreadable. */
export async function readOwner(dir: string): Promise<Owner | null> {
  let text: string;
  try {
    text = await readFile(join(dir, OWNER_FILE), "utf8");
  } catch {
    return null;
  }
  try {
    const parsed = Owner.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
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
