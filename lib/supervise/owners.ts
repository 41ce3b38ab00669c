// Whose files in the supervise queue are believed. The folder is shared with every daemon of
// the bundle (your group's and sticky: queue.ts SHARED_QUEUE_MODE), so besides supervise,
// the firewall, egress and git-gate (two of which the agent talks to) can make new files
// there: a "pending request" the operator would take for one the agent filed through
// supervise (past its checks and caps), or a "decision" supervise would pass to the agent as
// the operator's. Sticky stops them replacing a file another uid owns, not making one under
// a name no file has yet. So each file is judged by the uid that owns it, read from the
// file as opened (queue.ts), which no daemon can change (none holds CAP_CHOWN):
// - the queue folder's owner, the operator (bb-prepare made it, as you or as root; no daemon
//   runs as that uid: lib/layout.ts daemonIdMap), may write anything, a decision included;
// - supervise may file a pending request, and only that: its uid is the one layout gives it
//   under the folder's owner (what bb-bundle hands the bundle's init in BB_DAEMON_IDS), or
//   the reader's own (supervise reading what it filed, whatever uid it was started as).
// A file of any other uid is left out, with a warning, and the rest of the queue still works.
import { lstat } from "node:fs/promises";
import process from "node:process";
import { BbError } from "../errors.ts";
import { daemonIdMap } from "../layout.ts";
import { log } from "../log.ts";
import { printable } from "../printable.ts";

export interface QueueOwners {
  /** The queue folder's owner: the only uid whose decisions count. */
  operator: number;
  /** The uids a pending request may come from. */
  supervise: readonly number[];
}

/** Who may write what in `queueDir`; null where files have no owners to go by (Windows). */
export async function queueOwners(queueDir: string): Promise<QueueOwners | null> {
  const me = process.geteuid?.();
  if (me === undefined) return null;
  const folder = await lstat(queueDir).catch((e: Error) => {
    throw new BbError("STATE", `Cannot read the supervise queue ${queueDir}: ${e.message}`, { cause: e });
  });
  const layout = daemonIdMap({ uid: folder.uid, gid: folder.gid }).supervise.uid;
  return { operator: folder.uid, supervise: [...new Set([layout, me])] };
}

/** Whether a file owned by `uid` may be believed before it is even parsed. */
export function mayHold(owners: QueueOwners | null, uid: number): boolean {
  return !owners || uid === owners.operator || owners.supervise.includes(uid);
}

/** Why a file owned by `uid` saying `status` is not believed, or null when it is. */
export function distrust(owners: QueueOwners | null, uid: number, status: string | null): string | null {
  if (!owners || uid === owners.operator) return null;
  const operator = `the operator's (uid ${owners.operator}, the queue folder's owner)`;
  if (!owners.supervise.includes(uid)) {
    return `it belongs to uid ${uid}, neither supervise's (uid ${owners.supervise.join(" or ")}) nor ${operator}: another daemon of the bundle made it`;
  }
  if (status === "pending") return null;
  return `it says ${status}, but it belongs to supervise (uid ${uid}), and only a decision of ${operator} counts`;
}

/** Each file left out is said once per process (supervise polls), in at most this many lines before they start over. */
const MAX_REMEMBERED = 1000;
const said = new Set<string>();

/** One warning line naming the file left out and its owner. */
export function warnLeftOut(path: string, why: string): void {
  const key = `${path}\0${why}`;
  if (said.has(key)) return;
  if (said.size >= MAX_REMEMBERED) said.clear();
  said.add(key);
  log.warn(printable(`left out supervise queue file ${path}: ${why}`));
}
