// Gathering the facts list and cleanup decide on: every bottle state dir under the state
// root, every docker container, network and volume carrying the bot-bottle label under the name
// bot-bottle gives it (bottleOf), every smolvm machine named like a bottle. Grouped by slug
// and state root (the bot-bottle.state-root label): nothing is judged here (see classify.ts).
import { existsSync, realpathSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { decodeLabelValue, LABEL, listContainers, listNetworks, listVolumes, type ContainerSummary, type LabelFilter, type NetworkSummary, type VolumeSummary } from "../docker/index.ts";
import { BLOCKED_DIR } from "../blocked-record.ts";
import { names } from "../layout.ts";
import { BbError } from "../errors.ts";
import { log } from "../log.ts";
import { APPROVALS_FILE, RELOAD_OWED_FILE } from "../supervise/approvals.ts";
import { SHOWN_FILE } from "../supervise/shown.ts";
import { stateRootError } from "../paths.ts";
import { parsePlanText } from "../plan/io.ts";
import type { Plan } from "../plan/schema.ts";
import { SLUG_PATTERN } from "../prepare/slug.ts";
import type { MachineInfo } from "../smolvm/driver.ts";
import { KEPT_FILE, OWNER_FILE, ownerAlive, readOwner, type Owner } from "./owner.ts";
import { readRegularFile } from "../read-regular.ts";

export interface StateDirFacts {
  path: string;
  plan: Plan | null;
  /** Why plan.json could not be used (missing, not JSON, not a plan). */
  planError: string | null;
  owner: Owner | null;
  ownerAlive: boolean;
  /** A `kept` record: the start flow handed the bottle over to you (keep=true). */
  kept: boolean;
  /** Newest modification time of the dir and its plan.json, for the grace period. */
  mtimeMs: number;
}

export interface ContainerFacts {
  name: string;
  id: string;
  role: string;
  backend: string;
  agent: string;
  /** docker's state word: running, created, exited, paused, ... */
  state: string;
  createdAt: string;
}

export interface NetworkFacts {
  name: string;
  id: string;
  role: string;
  /** As docker prints it ("2026-05-27 18:00:00.123 +0000 UTC"). */
  createdAt: string;
}

export interface VolumeFacts {
  name: string;
  role: string;
}

export interface MachineFacts {
  name: string;
  state: string;
}

export interface BottleFacts {
  slug: string;
  dir: StateDirFacts | null;
  /** The other state root its docker resources name (bot-bottle.state-root), when they
   * name one: its state dir, and so its owner, is there, not here (dir is then null). The
   * same slug can also be a bottle of this root: that is another BottleFacts. */
  elsewhere: string | null;
  containers: ContainerFacts[];
  networks: NetworkFacts[];
  /** Named volumes (git-gate's store): no sign of life, they outlast every start. */
  volumes: VolumeFacts[];
  machines: MachineFacts[];
}

/** What collect() reads docker through (lib/docker's list functions). */
export interface DockerSource {
  listContainers(filter: LabelFilter): Promise<ContainerSummary[]>;
  listNetworks(filter: LabelFilter): Promise<NetworkSummary[]>;
  listVolumes(filter: LabelFilter): Promise<VolumeSummary[]>;
}

/** The real engine, through the docker CLI. */
export const DOCKER_ENGINE: DockerSource = { listContainers, listNetworks, listVolumes };

/** What collect() reads smolvm through (lib/smolvm's driver). */
interface SmolvmSource {
  ls(): Promise<MachineInfo[]>;
}

interface CollectOptions {
  stateRoot: string;
  /** null: docker is not installed, so there is nothing of ours in it. */
  docker: DockerSource | null;
  /** null: smolvm is not installed. */
  smolvm: SmolvmSource | null;
  /**
   * Only docker resources also carrying these labels (one CI job or test run among others
   * on the same engine). smolvm machines have no labels, so with a scope only machines of
   * slugs found in scope are kept; a state dir is kept unless its bottle has docker
   * resources outside the scope.
   */
  scope?: Record<string, string>;
}

export interface Inventory {
  stateRoot: string;
  bottles: BottleFacts[];
  /** A backend that is installed but could not be asked (engine down, bad output). */
  errors: { backend: "docker" | "smolmachines"; message: string }[];
}

/** The folders below <stateRoot>/bottles/ with what each holds. */
export async function readStateDirs(stateRoot: string): Promise<Map<string, StateDirFacts>> {
  const root = join(stateRoot, "bottles");
  const out = new Map<string, StateDirFacts>();
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return out;
    throw stateRootError(stateRoot, e);
  }
  const bottles = entries.filter((e) => e.isDirectory());
  const ours = await Promise.all(bottles.map((e) => isBottleDir(join(root, e.name), e.name)));
  await Promise.all(bottles.filter((_, i) => ours[i]).map(async (e) => out.set(e.name, await readStateDir(join(root, e.name)))));
  return out;
}

/** What one bottle's folder holds (a folder that is gone holds nothing: no plan, no owner). */
export async function readStateDir(path: string): Promise<StateDirFacts> {
  const planPath = join(path, "plan.json");
  let plan: Plan | null = null;
  let planError: string | null = null;
  try {
    const text = await readRegularFile(planPath).catch((e: Error) => {
      throw new BbError("PLAN_INVALID", `Cannot read plan file ${planPath}: ${e.message}`, { cause: e });
    });
    plan = parsePlanText(text, [], planPath);
  } catch (err) {
    planError = (err as Error).message;
  }
  const owner = await readOwner(path);
  const times = await Promise.all([path, planPath].map((p) => stat(p).then((s) => s.mtimeMs, () => 0)));
  const kept = existsSync(join(path, KEPT_FILE));
  return { path, plan, planError, owner, ownerAlive: owner ? ownerAlive(owner) : false, kept, mtimeMs: Math.max(...times) };
}

/** What bot-bottle puts in a bottle's folder (bb-prepare, bb-bundle, bb-provision, the
 * start flow; the names lib/bundle, lib/provision and lib/loopback.ts give theirs). */
const BOTTLE_ENTRIES = new Set([
  "plan.json", OWNER_FILE, KEPT_FILE, "firewall", "egress", "git-gate", "supervise", "prompt.md", "ca", "flow", APPROVALS_FILE, RELOAD_OWED_FILE, SHOWN_FILE,
  "git-gate-data", "git-gate-identities", "upstream-ca", "provision", "loopback-addr", BLOCKED_DIR,
]);

/**
 * Whether a folder below bottles/ is a bottle's: named as a slug, and empty (a bb-prepare
 * stopped right after making it) or holding something bot-bottle writes there. Anything
 * else (a mistyped --state-dir over a folder of your own) is left alone, and said so:
 * cleanup would otherwise remove it as a dead bottle's.
 */
async function isBottleDir(path: string, name: string): Promise<boolean> {
  const names = await readdir(path).catch(() => null);
  const ours = SLUG_PATTERN.test(name) && names !== null && (names.length === 0 || names.some((n) => BOTTLE_ENTRIES.has(n)));
  if (!ours) log.warn(`left alone: ${path} is not a bottle's folder (${SLUG_PATTERN.test(name) ? "nothing bot-bottle writes is in it" : "its name is no slug"})`);
  return ours;
}

/** The folder a state root path leads to (symlinks followed), or the path itself where there is none. */
export function realRoot(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

const MACHINE_PREFIX = names.machine("");

/** The name bot-bottle gives the resource of each role it labels (lib/layout.ts). */
const NAME_OF_ROLE: Record<string, (slug: string) => string> = {
  agent: names.agent,
  bundle: names.bundle,
  "network-internal": names.internalNet,
  "network-egress": names.egressNet,
  "volume-git-gate": names.gitGateVolume,
};

/**
 * The bottle a labelled container or network belongs to, or null when it is not one
 * bot-bottle made: its slug label must be a slug and its name the one bot-bottle gives its
 * role in that bottle. The labels alone prove nothing: a container carries every label of
 * its image, so one run from an image committed from a bottle's container (or from any image
 * whose Dockerfile says LABEL bot-bottle=1) has them all under a name of its own, and
 * cleanup would remove it, anonymous volumes and all. `why` says what did not fit.
 */
export function bottleOf(r: { name: string; labels: Record<string, string> }): { slug: string } | { slug: null; why: string | null } {
  const slug = r.labels[LABEL.slug];
  // Labelled bot-bottle=1 but no slug: not made by a bottle, never ours to touch.
  if (slug === undefined || slug === "") return { slug: null, why: null };
  if (!SLUG_PATTERN.test(slug)) return { slug: null, why: `its ${LABEL.slug} label ${JSON.stringify(slug)} is no slug` };
  const role = r.labels[LABEL.role] ?? "";
  const expected = Object.hasOwn(NAME_OF_ROLE, role) ? NAME_OF_ROLE[role]!(slug) : null;
  if (expected === null) return { slug: null, why: `its ${LABEL.role} label ${JSON.stringify(role)} is no role bot-bottle gives` };
  if (r.name !== expected) return { slug: null, why: `bot-bottle names bottle ${slug}'s ${role} ${expected}` };
  return { slug };
}

/** The slug a smolvm machine name belongs to, or null when it is not one of ours. */
export function machineSlug(name: string): string | null {
  if (!name.startsWith(MACHINE_PREFIX)) return null;
  const slug = name.slice(MACHINE_PREFIX.length);
  return SLUG_PATTERN.test(slug) ? slug : null;
}

export async function collect(opts: CollectOptions): Promise<Inventory> {
  const errors: Inventory["errors"] = [];
  const filter: LabelFilter = { [LABEL.root]: "1", ...(opts.scope ?? {}) };
  const guard = async <T>(backend: "docker" | "smolmachines", p: Promise<T[]> | undefined): Promise<T[]> => {
    if (!p) return [];
    try {
      return await p;
    } catch (e) {
      const message = (e as Error).message;
      // Containers and networks are two calls each (four with a scope), asked at once: an
      // engine that is down or hung fails them all alike, each naming its own call. One
      // line per backend says it.
      if (errors.some((x) => x.backend === backend)) log.debug(`${backend}: ${message}`);
      else errors.push({ backend, message });
      return [];
    }
  };
  // With a scope, every resource too: a state dir is no docker resource and carries no
  // label, so its bottle is left out when the engine holds anything of it outside the scope
  // (judged by its in-scope part alone, a running bottle would look dead).
  const unscoped = { [LABEL.root]: "1" };
  // A volume is known by its name: give it that as the ID the others have.
  const volumes = (f: LabelFilter) => opts.docker?.listVolumes(f).then((vs) => vs.map((v) => ({ ...v, id: v.name })));
  const [dirs, containers, networks, vols, machines, allContainers, allNetworks, allVols] = await Promise.all([
    readStateDirs(opts.stateRoot),
    guard("docker", opts.docker?.listContainers(filter)),
    guard("docker", opts.docker?.listNetworks(filter)),
    guard("docker", volumes(filter)),
    guard("smolmachines", opts.smolvm?.ls()),
    opts.scope ? guard("docker", opts.docker?.listContainers(unscoped)) : [],
    opts.scope ? guard("docker", opts.docker?.listNetworks(unscoped)) : [],
    opts.scope ? guard("docker", volumes(unscoped)) : [],
  ]);
  // Said once per resource: the scoped and unscoped lists hold the same one twice.
  const warned = new Set<string>();
  const ours = <T extends { id: string; name: string; labels: Record<string, string> }>(kind: string, list: T[]) =>
    list.flatMap((r) => {
      const b = bottleOf(r);
      if (b.slug !== null) return [{ slug: b.slug, r }];
      if (b.why && !warned.has(r.id)) {
        warned.add(r.id);
        log.warn(`left alone: ${kind} ${r.name} carries bot-bottle's labels but is not a bottle's (${b.why})`);
      }
      return [];
    });
  const inScope = new Set([...containers, ...networks, ...vols].map((r) => r.id));
  const here = realRoot(opts.stateRoot);
  const outside = new Set(
    [...ours("container", allContainers), ...ours("network", allNetworks), ...ours("volume", allVols)].filter(({ r }) => !inScope.has(r.id) && otherRoot(r.labels, here) === null).map(({ slug }) => slug),
  );

  // Keyed by slug and root: slug X of this root and slug X of another root are two
  // bottles. Grouped as one, this root's own state dir for X would be judged by the other
  // root's containers (and kept, or refused by `bb-cleanup --slug X`, as theirs).
  const bottles = new Map<string, BottleFacts>();
  const bottle = (slug: string, elsewhere: string | null) => {
    const key = elsewhere === null ? slug : `${slug}\n${elsewhere}`;
    let b = bottles.get(key);
    if (!b) bottles.set(key, (b = { slug, dir: null, elsewhere, containers: [], networks: [], volumes: [], machines: [] }));
    return b;
  };
  for (const [slug, dir] of dirs) if (!outside.has(slug)) bottle(slug, null).dir = dir;
  for (const { slug, r: c } of ours("container", containers)) {
    bottle(slug, otherRoot(c.labels, here)).containers.push({
      name: c.name,
      id: c.id,
      role: c.labels[LABEL.role] ?? "",
      backend: c.labels[LABEL.backend] ?? "",
      agent: c.labels[LABEL.agent] ?? "",
      state: c.state,
      createdAt: c.createdAt,
    });
  }
  for (const { slug, r: n } of ours("network", networks)) {
    bottle(slug, otherRoot(n.labels, here)).networks.push({ name: n.name, id: n.id, role: n.labels[LABEL.role] ?? "", createdAt: n.createdAt });
  }
  for (const { slug, r: v } of ours("volume", vols)) {
    bottle(slug, otherRoot(v.labels, here)).volumes.push({ name: v.name, role: v.labels[LABEL.role] ?? "" });
  }
  const all = [...bottles.values()];
  for (const m of machines) {
    const slug = machineSlug(m.name);
    if (!slug) continue;
    const owner = machineOwner(all.filter((b) => b.slug === slug));
    if (owner === undefined && opts.scope) continue;
    (owner ?? bottle(slug, null)).machines.push({ name: m.name, state: m.state });
  }
  const order = (a: BottleFacts, b: BottleFacts) => a.slug.localeCompare(b.slug) || (a.elsewhere ?? "").localeCompare(b.elsewhere ?? "");
  return { stateRoot: opts.stateRoot, bottles: [...bottles.values()].sort(order), errors };
}

const isSmolvmBottle = (b: BottleFacts) => b.dir?.plan?.backend === "smolmachines" || b.containers.some((c) => c.backend === "smolmachines");

/**
 * Which of the bottles found under a slug (this root's, other roots') a smolvm machine of
 * that slug belongs to. Machines carry no labels, so it goes by whose bottle is a
 * smolmachines one: this root's first, then another root's (its bundle container names
 * the root); failing that, this root's bottle of the slug, else another root's (where it
 * is kept, never removed from here). Undefined when there is no bottle of that slug.
 */
function machineOwner(candidates: BottleFacts[]): BottleFacts | undefined {
  const mine = candidates.find((b) => b.elsewhere === null);
  return (mine && isSmolvmBottle(mine) ? mine : undefined) ?? candidates.find(isSmolvmBottle) ?? mine ?? candidates[0];
}

/**
 * The state root a resource's labels name when it is not `here` (a realRoot), else null.
 * Resources made before the label existed carry none, and are judged as ours. A root is
 * compared by the folder it is, so one reached through a symlink is still this one.
 */
export function otherRoot(labels: Record<string, string>, here: string): string | null {
  const root = labels[LABEL.stateRoot];
  if (root === undefined) return null;
  const decoded = decodeLabelValue(root);
  return realRoot(decoded) === here ? null : decoded;
}
