// The live rule, in one place. A bottle is LIVE when
//   - its owner process (owner.json, the running start flow) is alive, or
//   - its agent is running: the agent container (docker) or the smolvm machine, unless
//     an owner is recorded and gone: a start flow killed before it tore down (SIGKILL,
//     a crash) leaves the agent running, while a flow that keeps its finished bottle
//     (keep=true) drops owner.json when it hands the bottle over, or
//   - it has no owner record and was created less than the grace period ago (default
//     GRACE_MS; bb-cleanup --grace): a start flow between
//     bb-prepare and writing owner.json, or a hand-run pipe between bb-bundle and bb-vm,
//     must not be reaped by a cleanup that happens to run at that moment, or
//   - it was kept for you (keep=true: the flow's `kept` record), running or not: stopped
//     by a reboot, its containers pruned, or its resume killed, it is yours to resume or
//     remove (bb-cleanup --slug), or
//   - its docker resources name another state root (sudo, another BB_STATE_DIR): its
//     owner and kept records are there, so only a list or cleanup of that root judges it.
// Everything else bot-bottle created is an orphan, whatever is left of it.
import type { BottleFacts } from "./collect.ts";

export const GRACE_MS = 60_000;

/** "prepared": bb-prepare's files alone, nothing started and no start flow at work (a
 * hand-run bb-prepare, within the grace period: its bb-bundle may come next). */
export type Status = "running" | "starting" | "prepared" | "kept" | "orphan" | "elsewhere";

export interface Bottle extends BottleFacts {
  backend: string | null;
  agent: string | null;
  services: string[];
  startedAt: string | null;
  status: Status;
  live: boolean;
  /** Why it is live, or why it is an orphan, for people. */
  why: string;
}

/** docker ps prints "2026-05-27 18:00:00 +0000 UTC"; make it ISO so Date.parse reads it. */
export function parseDockerTime(text: string): number {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.\d+)? ([+-]\d\d)(\d\d)/.exec(text);
  return m ? Date.parse(`${m[1]}T${m[2]}${m[3]}:${m[4]}`) : Date.parse(text);
}

/** The last sign of life: a bundle that has made only its networks so far (building its
 * image, say) is as new as they are. */
function newest(f: BottleFacts): number {
  const created = [...f.containers, ...f.networks].map((r) => parseDockerTime(r.createdAt));
  const times = [f.dir?.mtimeMs ?? 0, ...created].filter((t) => Number.isFinite(t));
  return Math.max(0, ...times);
}

function ago(ms: number): string {
  return `${Math.max(0, Math.round(ms / 1000))}s ago`;
}

interface ClassifyOptions {
  now?: number;
  graceMs?: number;
}

export function classify(f: BottleFacts, opts: ClassifyOptions = {}): Bottle {
  const now = opts.now ?? Date.now();
  const plan = f.dir?.plan ?? null;
  const owner = f.dir?.owner ?? null;
  const agentContainer = f.containers.some((c) => c.role === "agent" && c.state === "running");
  const machine = f.machines.some((m) => m.state === "running");
  const ownerLive = f.dir?.ownerAlive ?? false;
  const abandoned = owner !== null && !ownerLive;
  const agentUp = agentContainer && !abandoned;
  const machineUp = machine && !abandoned;
  const age = now - newest(f);
  const fresh = !owner && age < (opts.graceMs ?? GRACE_MS);
  // Kept for you (keep=true): stopped by a reboot, say, it is still yours to resume.
  const kept = (f.dir?.kept ?? false) && !agentUp && !machineUp;
  const preparedOnly = plan !== null && !plan.bundle && !plan.vm && f.containers.length + f.networks.length + f.machines.length === 0;

  const liveBecause = [
    ownerLive ? `owner pid ${owner!.pid} alive` : "",
    agentUp ? "agent container running" : "",
    machineUp ? "smolvm machine running" : "",
    fresh && !kept ? (preparedOnly ? `prepared ${ago(age)} and not started, no owner recorded` : `last changed ${ago(age)}, no owner recorded yet`) : "",
    kept ? `kept (keep=true), ${agentContainer || machine ? "agent left running by a start flow that died" : "not running"}: just start slug=${f.slug} resumes it, bb-cleanup --slug ${f.slug} removes it` : "",
    f.elsewhere ? `a bottle of state root ${f.elsewhere} (bb-list and bb-cleanup judge it with --state-dir ${f.elsewhere})` : "",
  ].filter(Boolean);
  const live = liveBecause.length > 0;
  const orphanBecause = [
    owner ? `owner pid ${owner.pid} gone` : "no owner",
    agentContainer || machine ? "agent left running by a start flow that died" : "agent not running",
    f.dir ? (f.dir.planError ? "plan.json unusable" : "") : "no state dir",
  ].filter(Boolean);

  const firstContainer = f.containers[0];
  const earliestContainer = f.containers.map((c) => parseDockerTime(c.createdAt)).filter(Number.isFinite).sort((a, b) => a - b)[0];
  return {
    ...f,
    backend: plan?.backend ?? (firstContainer?.backend || null) ?? (f.machines.length ? "smolmachines" : null),
    agent: plan?.agent.name ?? (firstContainer?.agent || null),
    services: plan?.services ?? [],
    startedAt: preparedOnly && !owner ? null : (
      owner?.startedAt ??
      plan?.vm?.startedAt ??
      plan?.bundle?.startedAt ??
      plan?.createdAt ??
      (earliestContainer === undefined ? null : new Date(earliestContainer).toISOString())),
    status: agentUp || machineUp ? "running" : f.elsewhere ? "elsewhere" : ownerLive ? "starting" : kept ? "kept" : fresh ? (preparedOnly ? "prepared" : "starting") : "orphan",
    live,
    why: (live ? liveBecause : orphanBecause).join(", "),
  };
}

export function classifyAll(bottles: BottleFacts[], opts: ClassifyOptions = {}): Bottle[] {
  return bottles.map((b) => classify(b, opts));
}
