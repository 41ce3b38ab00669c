// One call for both tools: open the backends this machine has, collect what bot-bottle
// created, judge each bottle live or orphan, and pick what cleanup would remove.
import { BbError } from "../errors.ts";
import { log } from "../log.ts";
import { openBackends, type Backends } from "./backends.ts";
import { classify, classifyAll, type Bottle } from "./classify.ts";
import { collect, readStateDir, type Inventory } from "./collect.ts";
import { isEmpty, removalFor, type Recheck, type Removal } from "./remove.ts";

interface ScanOptions {
  stateRoot: string;
  /** Extra labels docker resources must carry (see CollectOptions.scope). */
  scope?: Record<string, string>;
  /** How long a bottle without an owner record counts as starting (default GRACE_MS). */
  graceMs?: number;
}

interface Scan {
  backends: Backends;
  bottles: Bottle[];
  errors: Inventory["errors"];
}

export async function scan(opts: ScanOptions): Promise<Scan> {
  const backends = await openBackends();
  const inv = await collect({ stateRoot: opts.stateRoot, docker: backends.docker, smolvm: backends.smolvm, scope: opts.scope });
  return { backends, bottles: classifyAll(inv.bottles, { graceMs: opts.graceMs }), errors: [...backends.errors, ...inv.errors] };
}

interface CleanupSelection {
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
  const sweep = (b: Bottle) => !b.live && !machineOnly(b);
  return {
    removals: bottles.filter(sweep).map(removalFor).filter((r) => !isEmpty(r)),
    kept: [
      ...bottles.filter((b) => b.live),
      ...bottles.filter((b) => !b.live && machineOnly(b)).map((b) => ({
        ...b,
        why: `only a stopped smolvm machine named like its (${b.machines.map((m) => m.name).join(", ")}): machines carry no labels, and nothing else of bottle ${b.slug} is here, so it may be yours; bb-cleanup --slug ${b.slug} removes it`,
      })),
    ],
  };
}

/**
 * Nothing of the bottle but smolvm machines: no state dir, container, network or volume. smolvm
 * machines carry no labels, so a name alone (bb-<slug>) is all that ties one to bot-bottle,
 * and a machine of your own named bb-dev must not go in a sweep. bot-bottle's teardown
 * removes the machine before the state dir, so its own leftovers keep one of the two.
 */
function machineOnly(b: Bottle): boolean {
  return b.machines.length > 0 && b.dir === null && b.containers.length + b.networks.length + b.volumes.length === 0 && !b.elsewhere;
}

/**
 * For a sweep (no --slug): each planned orphan judged again by its state dir as it is now,
 * right before it goes. A y/N can wait minutes, and meanwhile `just start slug=S` may have
 * taken the bottle (an owner record of a live flow), a reattach kept it, or a new bottle
 * been prepared under the slug: then it is live, and left. Its docker facts are the scan's:
 * what the plan would remove of them goes by ID, so none made since is touched.
 */
export function recheckOrphans(bottles: Bottle[], opts: { graceMs?: number } = {}): Recheck {
  return async (r) => {
    const b = bottles.find((x) => x.slug === r.slug && !x.elsewhere);
    if (!b?.dir) return null;
    const now = classify({ ...b, dir: await readStateDir(b.dir.path) }, { graceMs: opts.graceMs });
    return now.live ? now.why : null;
  };
}

/**
 * What cleanup may judge when a backend could not be asked. Without docker, nothing: every
 * bottle has docker parts (a smolmachines bottle's bundle too), so an unseen running agent
 * could be taken for an orphan's. Without smolvm, every bottle but the smolmachines ones:
 * a docker bottle has no machine, while a smolmachines bottle whose machine may be running
 * is kept, and its `--slug` teardown refused (its machine would stay behind). An unrelated
 * smolvm on PATH that cannot answer (too old, broken) must not stop docker bottles' cleanup,
 * the start flow's own teardown among them.
 */
export function judgeable(s: Scan, opts: { slug?: string } = {}): Bottle[] {
  const smolvm = s.errors.find((e) => e.backend === "smolmachines");
  const refuse = (errors: Inventory["errors"]) => {
    const what = errors.map((e) => `${e.backend}: ${e.message}`).join("\n  ");
    return new BbError("STATE", `Cannot tell which bottles are live, so nothing was removed:\n  ${what}\nStart the backend named above (or take its CLI off PATH if you do not use it) and run bb-cleanup again.`, {
      details: { errors },
    });
  };
  if (s.errors.some((e) => e.backend === "docker")) throw refuse(s.errors);
  if (!smolvm) return s.bottles;
  const unseen = (b: Bottle) => b.backend === "smolmachines";
  if (opts.slug !== undefined) {
    if (s.bottles.some((b) => b.slug === opts.slug && !b.elsewhere && unseen(b))) throw refuse([smolvm]);
    log.debug(`smolmachines: ${smolvm.message} (bottle ${opts.slug} is not a smolmachines one)`);
    return s.bottles;
  }
  const why = `a smolmachines bottle, and smolvm could not be asked whether its machine runs (${smolvm.message})`;
  log.warn(`smolmachines: ${smolvm.message}: smolmachines bottles are left as they are, the rest is judged as usual`);
  return s.bottles.map((b) => (unseen(b) && !b.live ? { ...b, live: true, why } : b));
}
