// One call for both tools: open the backends this machine has, collect what bot-bottle
// created, judge each bottle live or orphan, and pick what cleanup would remove.
import { BbError } from "../errors.ts";
import { openBackends, type Backends } from "./backends.ts";
import { classifyAll, type Bottle } from "./classify.ts";
import { collect, type Inventory } from "./collect.ts";
import { isEmpty, removalFor, type Removal } from "./remove.ts";

export interface ScanOptions {
  stateRoot: string;
  /** Extra labels docker resources must carry (see CollectOptions.scope). */
  scope?: Record<string, string>;
  /** How long a bottle without an owner record counts as starting (default GRACE_MS). */
  graceMs?: number;
}

export interface Scan {
  backends: Backends;
  bottles: Bottle[];
  errors: Inventory["errors"];
}

export async function scan(opts: ScanOptions): Promise<Scan> {
  const backends = await openBackends();
  const inv = await collect({ stateRoot: opts.stateRoot, docker: backends.docker, smolvm: backends.smolvm, scope: opts.scope });
  return { backends, bottles: classifyAll(inv.bottles, { graceMs: opts.graceMs }), errors: [...backends.errors, ...inv.errors] };
}

export interface CleanupSelection {
  removals: Removal[];
  /** Live bottles left alone (empty with `slug`). */
  kept: Bottle[];
}

/**
 * What cleanup removes: every orphan, or exactly the bottle `slug` (live or not: the start
 * flow tearing down its own bottle). A live bottle is never selected without `slug`.
 */
export function selectForCleanup(bottles: Bottle[], opts: { slug?: string } = {}): CleanupSelection {
  if (opts.slug !== undefined) {
    const ofSlug = bottles.filter((x) => x.slug === opts.slug);
    const b = ofSlug.find((x) => !x.elsewhere);
    // Only another root's: its state dir and owner are there, so removing its containers
    // from here would leave that state dir behind, and could pull a bottle from under its
    // flow. (This root's own bottle of that slug, a state dir its bb-bundle refused to build
    // on with SLUG_TAKEN, say, is removed alone.)
    const theirs = ofSlug.find((x) => x.elsewhere);
    if (!b && theirs) {
      throw new BbError("USAGE", `Bottle ${theirs.slug} belongs to state root ${theirs.elsewhere}: \`bb-cleanup --state-dir ${theirs.elsewhere} --slug ${theirs.slug}\` removes it`, {
        details: { stateRoot: theirs.elsewhere },
      });
    }
    return { removals: b ? [removalFor(b)].filter((r) => !isEmpty(r)) : [], kept: [] };
  }
  return {
    removals: bottles.filter((b) => !b.live).map(removalFor).filter((r) => !isEmpty(r)),
    kept: bottles.filter((b) => b.live),
  };
}

/** Cleanup must see every backend it can: an unanswered one could hide a live bottle. */
export function requireComplete(s: Scan): void {
  if (s.errors.length === 0) return;
  const what = s.errors.map((e) => `${e.backend}: ${e.message}`).join("\n  ");
  throw new BbError("STATE", `Cannot tell which bottles are live, so nothing was removed:\n  ${what}\nStart the backend named above (or take its CLI off PATH if you do not use it) and run bb-cleanup again.`, {
    details: { errors: s.errors },
  });
}
