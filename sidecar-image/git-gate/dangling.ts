// Upstream may hold a symbolic ref whose target does not exist (an alias to a branch that
// was deleted, or not made yet). Neither protocol lists such a ref, so before a push the
// gate cannot tell it from a free name, and upstream's receive-pack writes a push to it
// through to the target: creating an allowed ref would create a ref the policy refuses.
// So after a push that created refs, the gate lists upstream again; a ref that appeared
// under a name the push did not give, as a symref's target (v2) or at a value the push
// created (v0, which shows no symrefs), was made through one.
import type { Listing } from "./aliases.ts";
import { ZERO, type RefUpdate } from "./policy.ts";

interface HiddenCreate {
  /** The ref upstream created, not named by the push. */
  ref: string;
  new: string;
  /** The pushed ref it was reached through. */
  via: string;
}

/** The refs a push of `updates` created upstream under names it did not give. */
export function hiddenCreates(before: Listing, after: Listing, updates: RefUpdate[]): HiddenCreate[] {
  const named = new Set(updates.map((u) => u.ref));
  const created = updates.filter((u) => ZERO.test(u.old) && !ZERO.test(u.new));
  const out: HiddenCreate[] = [];
  for (const [ref, sha] of after.values) {
    if (named.has(ref) || before.values.has(ref)) continue;
    const via = after.protocol === "v2" ? created.find((u) => after.symrefs.get(u.ref) === ref) : created.find((u) => u.new === sha);
    if (via) out.push({ ref, new: sha, via: via.ref });
  }
  return out;
}
