// A bottle's decision lock held by the test, as a bb-supervise deciding for it would: what
// takes the lock next (a rebuild's bb-prepare) waits until the test lets go.
import type { TestContext } from "node:test";
import { underDecisionLock } from "../../lib/supervise/lock.ts";

/** Settles once the lock on the bottle in `dir` is held; `release` lets it go, and settles
 * once it is gone (the test lets go at its end too). */
export async function holdDecisionLock(t: TestContext, dir: string): Promise<{ release: () => Promise<void> }> {
  let letGo!: () => void;
  let held!: () => void;
  const holds = new Promise<void>((r) => (held = r));
  const holding = underDecisionLock(dir, () => new Promise<void>((r) => ((letGo = r), held())));
  const release = () => (letGo(), holding);
  t.after(release);
  await holds;
  return { release };
}
