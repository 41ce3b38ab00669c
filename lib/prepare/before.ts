// What a rebuild's bb-prepare (`just start slug=S` over a bottle that is not running)
// rewrites in the bottle's folder before the y/N, copied aside so that a "n", a Ctrl-C or
// a failure puts the folder back as it was. The copy is `flow/before.<pid>` (the start
// flow's pid), made only when that flow asks for it (a y/N follows: bb-prepare
// --copy-before) and while it holds the bottle's claim (owner.json), so one start at a
// time copies and puts back; a flow killed at the y/N (SIGKILL: no teardown) leaves its
// copy, which the next rebuild's bb-prepare, copying or not, puts back before it rewrites.
// Each copy holds its flow's owner record (pid and start time), so a pid the kernel gave
// to another process since is not taken for that flow.
// Copy and put-back hold the bottle's decision lock, as bb-supervise's decisions do, and a
// put-back keeps the hosts approved meanwhile in the firewall policy, which a bundle still
// running (its agent stopped) is then told to re-read.
import { existsSync } from "node:fs";
import { lstat, mkdir, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod/v3";
import { BbError } from "../errors.ts";
import { log } from "../log.ts";
import { OWNER_FILE, ownerAlive, ownerRecord, readOwnerFile } from "../inventory/owner.ts";
import { writeFileAtomic } from "../fs-atomic.ts";
import { readRegularFile } from "../read-regular.ts";
import { parseJsonFile } from "../sidecar-config.ts";
import { APPROVALS_FILE, clearReloadOwed, readApprovals, RELOAD_OWED_FILE, setReloadOwed, type Approval } from "../supervise/approvals.ts";
import { bundleDown } from "../supervise/decide.ts";
import { underDecisionLock } from "../supervise/lock.ts";
import { allowHost } from "../supervise/policy.ts";
import { normalizeHost } from "../supervise/queue.ts";
import { copyTree, kindOf, putBackEntry, putBackMode } from "./folder-copy.ts";

/** What bb-prepare writes in a bottle's folder (prepare.ts: the owner record, the plan;
 * files.ts: the daemons' configs, the prompt; a reload it no longer owes), all of it put
 * back; the rest (the CA, approved hosts, the supervise queue, git-gate's mirrors) it
 * leaves be. before.test.ts holds a rebuild's writes to this list. */
export const PREPARED_ENTRIES = [OWNER_FILE, "plan.json", "prompt.md", RELOAD_OWED_FILE, "firewall", "egress", "git-gate"] as const;
/** Folders bb-prepare makes or sets the mode of, deepest first: a mode put back, or the
 * folder removed if it made it and it is still empty. */
export const PREPARED_DIRS = ["supervise/queue", "supervise", "."] as const;

const SAVED_FILE = "saved.json";
/** In a copy: the owner record of the flow it is for, written first. */
const FLOW_FILE = "flow-owner.json";

const Saved = z.object({
  version: z.literal(1),
  savedAt: z.string(),
  modes: z.record(z.number().int().nullable()),
});

/** The copy's list of what it saved, refused (naming it) when it is no regular file: a FIFO
 * there would hold the rebuild and the teardown's put-back, Ctrl-C and all, forever. */
async function readSaved(copy: string): Promise<z.infer<typeof Saved>> {
  const path = join(copy, SAVED_FILE);
  return parseJsonFile(Saved, await readRegularFile(path), path);
}

export const copyOf = (dir: string, pid: number) => join(dir, "flow", `before.${pid}`);
const partOf = (dir: string, pid: number) => `${copyOf(dir, pid)}.part`;

/**
 * First step of the copy, before the claim: the owner record as it is, which the claim
 * is about to replace (a dead flow's, or none). Returns the unfinished copy.
 */
export async function beginCopy(dir: string, pid: number): Promise<string> {
  const part = partOf(dir, pid);
  await rm(part, { recursive: true, force: true });
  await mkdir(join(dir, "flow"), { recursive: true, mode: 0o700 });
  await mkdir(part, { mode: 0o700 });
  await writeFileAtomic(join(part, FLOW_FILE), JSON.stringify(ownerRecord(pid)) + "\n");
  if (await kindOf(join(dir, OWNER_FILE))) await copyTree(join(dir, OWNER_FILE), join(part, OWNER_FILE));
  return part;
}

/**
 * The rest of the copy, holding the claim and the decision lock: a copy a killed flow left
 * is put back first (its owner record, from before that flow's claim, becomes this copy's),
 * then what bb-prepare is about to rewrite is copied, and the copy is made whole by one
 * rename.
 */
export async function finishCopy(dir: string, pid: number): Promise<void> {
  const part = partOf(dir, pid);
  const dead = await putBackLeftCopies(dir, { except: pid, claimed: true });
  if (dead) {
    await rm(join(part, OWNER_FILE), { force: true });
    if (await kindOf(join(dead, OWNER_FILE))) await copyTree(join(dead, OWNER_FILE), join(part, OWNER_FILE));
  }
  for (const e of PREPARED_ENTRIES) {
    if (e !== OWNER_FILE && (await kindOf(join(dir, e)))) await copyTree(join(dir, e), join(part, e));
  }
  // The approvals as they are now, to tell the ones made meanwhile (never put back).
  if (await isFile(join(dir, APPROVALS_FILE))) await copyTree(join(dir, APPROVALS_FILE), join(part, APPROVALS_FILE));
  const modes: Record<string, number | null> = {};
  for (const d of PREPARED_DIRS) modes[d] = (await kindOf(join(dir, d))) === "d" ? (await lstat(join(dir, d))).mode & 0o7777 : null;
  const saved: z.infer<typeof Saved> = { version: 1, savedAt: new Date().toISOString(), modes };
  await writeFileAtomic(join(part, SAVED_FILE), JSON.stringify(saved) + "\n");
  // Ours whole before the one it replaces goes: killed between, the next rebuild finds two.
  await rename(part, copyOf(dir, pid));
  if (dead) await removeCopy(dead);
}

/**
 * A rebuild that makes no copy (bb-prepare run by hand) puts back and removes, holding the
 * decision lock, the copy a killed flow left, as one that copies does: kept, it would be
 * put back by a later rebuild, over this one. Without the claim (no --owner-pid) a copy
 * whose flow still runs is left be: that flow puts it back or removes it.
 */
export async function putBackLeft(dir: string, claimed: boolean): Promise<void> {
  const dead = await putBackLeftCopies(dir, { except: null, claimed });
  if (dead) await removeCopy(dead);
}

/** Drop an unfinished copy (the claim was refused, or the copy failed). */
export const dropPart = (dir: string, pid: number) => rm(partOf(dir, pid), { recursive: true, force: true });

export interface PutBackOptions {
  /** Have a bundle the plan put back names, if it still runs, re-read its policy
   * (bb-prepare: lib/supervise/bottle.ts's reload); an error that is bundleDown says none runs. */
  reloadFirewall?: (dir: string) => Promise<void>;
}

/**
 * Put the folder back from the copy start flow `pid` made, holding the decision lock, and
 * remove the copy; false when there is none (that flow's bb-prepare never copied, or put
 * it back itself). Hosts approved since the copy stay in the policy put back.
 */
export async function putBack(dir: string, pid: number, opts: PutBackOptions = {}): Promise<boolean> {
  const copy = copyOf(dir, pid);
  if (!existsSync(join(copy, SAVED_FILE))) {
    await dropPart(dir, pid);
    return false;
  }
  await underDecisionLock(dir, async () => {
    await restore(copy, dir, { owner: true });
    if (opts.reloadFirewall) await reloadPutBack(dir, opts.reloadFirewall);
  });
  await removeCopy(copy);
  return true;
}

/**
 * Refuse (BUSY) a put-back of start flow `pid`'s copy while that flow still runs (its
 * record in the copy: a pid reused since is not it) unless this process runs under it
 * (`runsUnder`: the flow's own teardown): a hand-run --put-back would otherwise pull the
 * folder that flow is rebuilding, at its y/N or after, from under it.
 */
export async function refuseLiveFlowsCopy(dir: string, pid: number, runsUnder: (pid: number) => Promise<boolean>): Promise<void> {
  const copy = copyOf(dir, pid);
  if (!existsSync(copy) || !(await flowAlive(copy, pid)) || (await runsUnder(pid))) return;
  throw new BbError("BUSY", `Cannot put ${dir} back: its copy ${copy} belongs to start flow pid ${pid}, which still runs (at its y/N, or its bottle starting): that flow puts it back at a "n" or Ctrl-C; end it, or put it back once it is gone`, {
    details: { pid, copy },
  });
}

/**
 * A bottle rebuilt while its agent was down may have kept its bundle running, whose
 * firewall holds the policy it last read: one without the hosts approved at the y/N (their
 * approve read the rebuilt plan, which names no bundle, so signalled nothing), or the
 * rebuilt one (a firewall restarted meanwhile reads the file as it then was). Told to
 * re-read the policy put back, as an approve would; one it could not be told is owed a
 * reload (approvals.ts), which the next decision pays; one told, or not running, owes none.
 */
async function reloadPutBack(dir: string, reload: (dir: string) => Promise<void>): Promise<void> {
  try {
    await reload(dir);
  } catch (e) {
    // Nothing runs: it reads the file when it starts, so no reload is owed either.
    if (bundleDown(e)) return clearReloadOwed(dir);
    const why = `the firewall of ${dir} could not be made to re-read the policy put back: ${(e as Error).message}`;
    log.warn(`put back ${dir}, but ${why}; the next bb-supervise decision has it re-read`);
    return setReloadOwed(dir, `put-back: ${why}`);
  }
  // The marker put back with the rest (an approval's reload that timed out before the
  // rebuild) is paid: the firewall has just read the policy as the file holds it.
  await clearReloadOwed(dir);
}

/** Removed by renaming it away first: a copy cut half way is never taken for a whole one. */
async function removeCopy(copy: string): Promise<void> {
  await rename(copy, `${copy}.gone`).catch(() => {});
  await rm(`${copy}.gone`, { recursive: true, force: true });
}

async function restore(copy: string, dir: string, opts: { owner: boolean }): Promise<void> {
  const saved = await readSaved(copy);
  for (const e of PREPARED_ENTRIES) {
    if (e !== OWNER_FILE || opts.owner) await putBackEntry(join(copy, e), join(dir, e));
  }
  for (const d of PREPARED_DIRS) await putBackMode(join(dir, d), saved.modes[d] ?? null);
  await keepApprovedSince(copy, dir);
}

/**
 * The policy put back is the one from before the rebuild's rewrite; a host approved
 * meanwhile (bb-supervise approve at the y/N) was written to the rewritten one. Added
 * again, as approve would have added it, so the policy never lacks an approved host.
 */
async function keepApprovedSince(copy: string, dir: string): Promise<void> {
  const policy = join(dir, "firewall", "policy.json");
  // A FIFO or folder there is left be (and not waited on): no approval was written to it.
  if (!(await isFile(policy)) || !(await isFile(join(dir, APPROVALS_FILE)))) return;
  let then: Approval[], now: Approval[];
  try {
    [then, now] = [await readApprovals(copy), await readApprovals(dir)];
  } catch (e) {
    // The folder is back as it was all the same; a rebuild would fail on the same file.
    log.warn(`put back ${dir} without checking for hosts approved meanwhile: ${(e as Error).message}`);
    return;
  }
  const seen = new Set(then.map(key));
  const kept: string[] = [];
  for (const a of now) {
    const host = normalizeHost(a.host);
    if (!seen.has(key(a)) && host && (await allowHost(policy, { host, tlsPassthrough: a.tlsPassthrough }))) kept.push(host);
  }
  if (kept.length) log.info(`bb-prepare: kept ${kept.join(", ")} in the firewall policy put back: approved while the rebuild waited`);
}

const isFile = (path: string) => lstat(path).then((st) => st.isFile(), () => false);
const key = (a: Approval) => `${a.host}\n${a.request}\n${a.approvedAt}`;

/**
 * Put back the copy a start flow killed before its y left (the folder then holds the files
 * bb-prepare rewrote for a plan never started), except its owner record, and return it, to
 * be removed once this flow's copy has taken that record. Unfinished copies and ones being
 * removed go, unless their flow still runs. Several whole ones (never left by this
 * version) put back the oldest: the others copied what an earlier one had rewritten.
 */
async function putBackLeftCopies(dir: string, opts: { except: number | null; claimed: boolean }): Promise<string | null> {
  const flow = join(dir, "flow");
  const whole: { path: string; at: string }[] = [];
  const names = await readdir(flow).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return [];
    throw e;
  });
  for (const name of names) {
    const m = /^before\.(\d+)(\.part|\.gone)?$/.exec(name);
    if (!m || Number(m[1]) === opts.except) continue;
    const path = join(flow, name);
    if (m[2] || !existsSync(join(path, SAVED_FILE))) {
      if (!(await flowAlive(path, Number(m[1])))) await rm(path, { recursive: true, force: true });
      continue;
    }
    // Holding the claim, every other flow is gone (its claim was taken over): only without
    // it is a whole copy's flow asked after.
    if (!opts.claimed && (await flowAlive(path, Number(m[1])))) continue;
    const saved = await readSaved(path);
    whole.push({ path, at: saved.savedAt });
  }
  whole.sort((a, b) => a.at.localeCompare(b.at));
  const [first, ...rest] = whole;
  if (!first) return null;
  await restore(first.path, dir, { owner: false });
  for (const r of rest) await removeCopy(r.path);
  log.info(`bb-prepare: put back what a start flow killed at its y/N (${first.path}) had left rewritten in ${dir}`);
  return first.path;
}

/** Whether the flow copy `path` is for still runs: its record's check (pid reuse included),
 * or the pid's alone in a copy cut short before its record (or by its removal). */
async function flowAlive(path: string, pid: number): Promise<boolean> {
  const rec = await readOwnerFile(join(path, FLOW_FILE));
  return ownerAlive(rec?.pid === pid ? rec : { pid, startedAt: "" });
}
