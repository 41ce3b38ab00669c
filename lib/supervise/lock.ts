// One decision on a bottle at a time. Approve, deny and answer each read the request, the
// firewall policy and the bottle's own records, then write them back whole; bb-prepare
// rewrites the policy and reads the approvals when it rebuilds the bottle. Two of these at
// once (two terminals, or an approve during `just start slug=S`) would each write back
// what it read, without the other's change: an approved host missing from the policy, or
// a request both approved and denied. So each holds this lock, a folder in the bottle's
// own folder (which no container mounts), for the whole of its read, change and write.
import { join } from "node:path";
import { withDirLock } from "../dir-lock.ts";
import { BbError } from "../errors.ts";
import { log } from "../log.ts";
import type { Owner } from "../inventory/owner.ts";

export const DECISION_LOCK = "supervise.lock";

const holderText = (h: Owner | null) => (h ? `pid ${h.pid}, since ${h.startedAt}` : "starting");

/**
 * Run `fn` holding the bottle's decision lock. An approve holds it while the firewall
 * re-reads its policy (bounded by BB_DOCKER_TIMEOUT per docker call), so a second one
 * waits minutes before it gives up, saying who holds it, or until `signal` fires (Ctrl-C).
 */
export function underDecisionLock<T>(bottleDir: string, fn: () => Promise<T>, opts: { waitMs?: number; signal?: AbortSignal } = {}): Promise<T> {
  const lock = join(bottleDir, DECISION_LOCK);
  const waitMs = opts.waitMs ?? 5 * 60_000;
  return withDirLock(
    lock,
    {
      waitMs,
      signal: opts.signal,
      staleMs: 30 * 60_000,
      onWait: (h) => log.info(`waiting for another bb-supervise or bb-prepare on this bottle (${holderText(h)}) to finish`),
      busy: (h) =>
        new BbError("BUSY", `Another bb-supervise or bb-prepare is deciding for this bottle (${holderText(h)}; it holds ${lock}) and has not finished in ${waitMs / 1000} s: wait for it, or end it; remove ${lock} only if no such process runs`, {
          details: { lock, pid: h?.pid ?? null },
        }),
    },
    fn,
  );
}
