// Removing bottles: the plan for each (what would go, in the order it goes) and a
// best-effort executor that keeps going past a failure and reports every step.
//
// Order per bottle: smolvm machine (stop, delete), agent container, bundle container, any
// other container, networks (only empty once their containers are gone) and volumes (only
// free once the bundle is gone), state dir last, and only when everything else of the
// bottle went.
//
// Containers and networks go by the ID the scan found, never by name: a bottle resumed under
// its slug since (`just start slug=S`, while a sweep's y/N waited) has new ones under the
// same names. A sweep also asks `recheck` before a bottle and again before its state dir
// whether the bottle is still an orphan: that resume claims the state dir first.
// Loopback aliases are not removed: on macOS the pool 127.0.0.16-31 is added once per boot
// and shared by every bottle (the plan's bundle.loopbackAddr only says which one this
// bottle used), and on Linux all of 127/8 is local already. A bottle's claim on its
// address is a file in its state dir (lib/loopback.ts), and goes with it.
import { lstat, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Bottle } from "./classify.ts";
import { KEPT_FILE, OWNER_FILE } from "./owner.ts";

export interface Removal {
  slug: string;
  backend: string | null;
  agent: string | null;
  live: boolean;
  why: string;
  machines: { name: string; running: boolean }[];
  containers: { name: string; id: string; role: string; running: boolean }[];
  networks: { name: string; id: string }[];
  /** By name: a volume has no other ID. */
  volumes: { name: string }[];
  stateDir: string | null;
}

export type ResourceKind = "machine" | "container" | "network" | "volume" | "state dir" | "image";

export interface RemovalResult {
  /** The bottle the resource belonged to ("" for an image: images are shared). */
  slug: string;
  kind: ResourceKind;
  name: string;
  ok: boolean;
  error?: string;
}

/** The operations removal needs; real ones in tools' mains, each throwing on failure. */
export interface Remover {
  stopMachine(name: string): Promise<void>;
  deleteMachine(name: string): Promise<void>;
  /** By ID; `name` for messages. */
  removeContainer(id: string, name: string): Promise<void>;
  removeNetwork(id: string, name: string): Promise<void>;
  removeVolume(name: string): Promise<void>;
  removeDir(path: string): Promise<void>;
}

const ROLE_ORDER = ["agent", "bundle"];
const roleRank = (role: string) => {
  const i = ROLE_ORDER.indexOf(role);
  return i === -1 ? ROLE_ORDER.length : i;
};

export function removalFor(b: Bottle): Removal {
  return {
    slug: b.slug,
    backend: b.backend,
    agent: b.agent,
    live: b.live,
    why: b.why,
    machines: b.machines.map((m) => ({ name: m.name, running: m.state === "running" })),
    containers: [...b.containers]
      .sort((x, y) => roleRank(x.role) - roleRank(y.role) || x.name.localeCompare(y.name))
      .map((c) => ({ name: c.name, id: c.id, role: c.role, running: c.state === "running" || c.state === "paused" || c.state === "restarting" })),
    networks: b.networks.map((n) => ({ name: n.name, id: n.id })).sort((x, y) => x.name.localeCompare(y.name)),
    volumes: b.volumes.map((v) => ({ name: v.name })).sort((x, y) => x.name.localeCompare(y.name)),
    stateDir: b.dir?.path ?? null,
  };
}

export function isEmpty(r: Removal): boolean {
  return r.machines.length + r.containers.length + r.networks.length + r.volumes.length === 0 && r.stateDir === null;
}

export function message(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).trim().split("\n").slice(0, 3).join(" ");
}

/** Why a bottle planned as an orphan is not to be removed now (it became live), or null. */
export type Recheck = (r: Removal) => Promise<string | null>;

interface Hooks {
  onResult: (res: RemovalResult) => void;
  recheck?: Recheck;
  onSkip: (r: Removal, why: string) => void;
}

async function removeOne(r: Removal, remover: Remover, hooks: Hooks): Promise<RemovalResult[]> {
  const { onResult, recheck } = hooks;
  const results: RemovalResult[] = [];
  const live = async () => {
    const why = recheck ? await recheck(r) : null;
    if (why !== null) hooks.onSkip(r, why);
    return why !== null;
  };
  if (await live()) return results;
  const step = async (kind: ResourceKind, name: string, fn: () => Promise<void>) => {
    let res: RemovalResult;
    try {
      await fn();
      res = { slug: r.slug, kind, name, ok: true };
    } catch (e) {
      res = { slug: r.slug, kind, name, ok: false, error: message(e) };
    }
    results.push(res);
    onResult(res);
  };
  for (const m of r.machines) {
    await step("machine", m.name, async () => {
      // A failed stop is not the end: delete -f may still take the machine away, and if it
      // cannot, its error is the one worth reporting.
      if (m.running) await remover.stopMachine(m.name).catch(() => {});
      await remover.deleteMachine(m.name);
    });
  }
  // rm --force (SIGKILL) rather than a graceful stop: a bottle being torn down is
  // disposable, its daemons hold nothing unwritten (queue and policy files are written
  // atomically), and docker's stop costs over a second per container.
  await Promise.all(r.containers.map((c) => step("container", c.name, () => remover.removeContainer(c.id, c.name))));
  await Promise.all([
    ...r.networks.map((n) => step("network", n.name, () => remover.removeNetwork(n.id, n.name))),
    ...r.volumes.map((v) => step("volume", v.name, () => remover.removeVolume(v.name))),
  ]);
  // Asked again: the containers took a while, and a resume claims the state dir first.
  if (r.stateDir && (await live())) return results;
  if (r.stateDir) {
    // Only once the rest is gone: the state dir's owner record is what makes the bottle's
    // leftovers an orphan's once its flow has exited. Without it, an agent container that
    // could not be removed counts as a live bottle, which a plain bb-cleanup never takes.
    const left = results.filter((x) => !x.ok).length;
    await step("state dir", r.stateDir, async () => {
      if (left) throw new Error(`kept while ${left} other resource(s) of the bottle remain: run bb-cleanup again once they can be removed`);
      await remover.removeDir(r.stateDir!);
    });
  }
  return results;
}

/**
 * Remove every resource of every bottle in `removals`, bottles in parallel (a few at a
 * time), steps within a bottle in order. Never throws: each step's outcome is a result.
 * With `recheck`, a bottle it finds live is left (the rest of it, when found so before its
 * state dir) and given to `onSkip`.
 */
export async function executeRemovals(
  removals: Removal[],
  remover: Remover,
  opts: { concurrency?: number; onResult?: (res: RemovalResult) => void; recheck?: Recheck; onSkip?: (r: Removal, why: string) => void } = {},
): Promise<RemovalResult[]> {
  const hooks: Hooks = { onResult: opts.onResult ?? (() => {}), recheck: opts.recheck, onSkip: opts.onSkip ?? (() => {}) };
  const queue = [...removals];
  const done: RemovalResult[][] = new Array(removals.length);
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      done[removals.indexOf(next)] = await removeOne(next, remover, hooks);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker));
  return done.flat();
}

/** The records that make a folder a bottle's, and a dead or kept one's, to bb-list and bb-cleanup. */
const RECORDS = new Set(["plan.json", OWNER_FILE, KEPT_FILE]);

/**
 * Remove a bottle's state dir (a directory entry below <state root>/bottles, never followed
 * through a link), its records last: a removal cut short (the teardown's bb-cleanup killed,
 * a power cut) while it was deep in git-gate's mirrors would otherwise leave a folder of
 * those alone, which no bb-cleanup takes for a bottle's again. With the records there, the
 * next one finds a dead bottle's leftovers and finishes the job. `remove`: rm, for tests.
 */
export async function removeStateDir(path: string, remove: typeof rm = rm): Promise<void> {
  const st = await lstat(path).catch(() => null);
  if (st?.isDirectory()) {
    const names = await readdir(path).catch(() => [] as string[]);
    const gone = await Promise.allSettled(names.filter((n) => !RECORDS.has(n)).map((n) => remove(join(path, n), { recursive: true, force: true })));
    for (const g of gone) if (g.status === "rejected") throw g.reason;
  }
  await remove(path, { recursive: true, force: true });
}
