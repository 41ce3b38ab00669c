// Turns at a mirror's refs, one at a time and in the order asked: a sync (git fetch
// --prune into the mirror) or a push's receive-pack. receive-pack updates the gate's refs
// after its hook forwarded the push, expecting each ref at its old value; a sync in between
// fetched what the push made upstream first, so that update failed ("cannot lock ref ...:
// reference already exists") and the agent saw a push refused that had landed. Held in
// the git-gate process, which runs every sync and every receive-pack of its mirrors (the
// push hook's own fetch of the mirror runs inside its push's turn).

export interface Turns {
  /** Wait for `key`'s turn (every turn asked before it has ended); call the function returned to end it. */
  take(key: string): Promise<() => void>;
}

export function createTurns(): Turns {
  /** Per key, the end of the last turn asked (deleted once that turn ends with none after it). */
  const last = new Map<string, Promise<void>>();
  return {
    async take(key) {
      const before = last.get(key) ?? Promise.resolve();
      let end!: () => void;
      const ended = new Promise<void>((resolve) => (end = resolve));
      const mine = before.then(() => ended);
      last.set(key, mine);
      void mine.then(() => {
        if (last.get(key) === mine) last.delete(key);
      });
      await before;
      return end;
    },
  };
}
