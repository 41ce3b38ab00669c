// Turns at a mirror's refs, one at a time and in the order asked: a sync (git fetch
// --prune into the mirror) or a push's receive-pack. receive-pack updates the gate's refs
// after its hook forwarded the push, expecting each ref at its old value; a sync in between
// fetched what the push made upstream first, so that update failed ("cannot lock ref ...:
// reference already exists") and the agent saw a push refused that had landed. Held in
// the git-gate process, which runs every sync and every receive-pack of its mirrors (the
// push hook's own fetch of the mirror runs inside its push's turn).
import { BbError } from "../../lib/errors.ts";

interface Turns {
  /**
   * Wait for `key`'s turn (every turn asked before it has ended); call the function
   * returned to end it. With `waitMs`, a turn that has not come by then is given up: the
   * promise rejects (BbError BUSY) and the turn, when it comes, passes straight on.
   */
  take(key: string, waitMs?: number): Promise<() => void>;
}

export function createTurns(): Turns {
  /** Per key, the end of the last turn asked (deleted once that turn ends with none after it). */
  const last = new Map<string, Promise<void>>();
  return {
    async take(key, waitMs) {
      const before = last.get(key) ?? Promise.resolve();
      let end!: () => void;
      const ended = new Promise<void>((resolve) => (end = resolve));
      const mine = before.then(() => ended);
      last.set(key, mine);
      void mine.then(() => {
        if (last.get(key) === mine) last.delete(key);
      });
      if (waitMs === undefined) {
        await before;
        return end;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), waitMs)));
      try {
        if ((await Promise.race([before, late])) === "late") {
          // Those queued after this turn still wait for it: it ends as soon as it comes.
          void before.then(end);
          throw new BbError("BUSY", `the turn at ${key} did not come within ${waitMs / 1000}s`);
        }
      } finally {
        clearTimeout(timer);
      }
      return end;
    },
  };
}
