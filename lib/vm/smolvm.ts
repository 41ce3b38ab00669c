// The smolmachines backend's agent: a smolvm microVM booted from the agent image packed as
// a .smolmachine, whose TSI allowlist is exactly the bottle's loopback address, where the
// bundle publishes its agent-facing ports. Commands touching the agent's home run as node
// with HOME=/home/node (smolvm's exec runs as root; bare runuser would keep root's HOME).
//
// smolvm takes a guest's environment only as `-e K=V` on its command line (create and
// exec; a Smolfile cannot be combined with --from), which every local user can read in
// /proc while it runs, and create keeps it in smolvm's state DB. So the machine gets no
// value that carries the bottle's agent key: the proxy, git-gate and supervise URLs reach
// the VM in bb-provision's tar, over the stdin of its one exec (AGENT.bundleEnv), and
// every command run here reads them from there (WITH_BUNDLE_ENV).
import { BbError } from "../errors.ts";
import { log } from "../log.ts";
import { AGENT, names } from "../layout.ts";
import { loopbackOccupants, type OccupantSources } from "../loopback-occupants.ts";
import type { Plan } from "../plan/schema.ts";
import { run, runInteractive, type RunOptions, type RunResult, ANY_EXIT } from "../proc.ts";
import type { Smolvm } from "../smolvm/driver.ts";
import { machineEnv, rootExec, WITH_BUNDLE_ENV } from "./env.ts";
import { agentLimits } from "./limits.ts";
import type { AgentImage } from "./docker.ts";

type Bundled = Plan & { bundle: NonNullable<Plan["bundle"]> };
type Vmd = Plan & { vm: NonNullable<Plan["vm"]> };

interface SmolvmVmOptions {
  agentImage: () => Promise<AgentImage>;
  smolvm: Smolvm;
  /** Pack (or reuse) the .smolmachine for an image. */
  pack: (image: string) => Promise<{ artifact: string; cached: boolean }>;
  signal?: AbortSignal;
  /** As VmOptions' handOver (docker.ts): interrupted there, the machine is deleted again. */
  handOver?: (started: Plan) => Promise<void>;
  now?: () => Date;
  /** Where to look for what else is bound to the bottle's address (default: this host and docker). */
  occupants?: OccupantSources;
}

/**
 * The VM will reach every port bound to the bottle's loopback address (its whole TSI
 * allowlist), so that address must hold this bottle's bundle and nothing else. bb-bundle
 * picked an address nothing used, but another state root's or user's bottle, or a host
 * service, may have taken it since: that one's firewall, git-gate and supervise would be
 * this agent's too.
 */
async function refuseSharedAddress(plan: Bundled, sources?: OccupantSources): Promise<void> {
  const addr = plan.bundle.loopbackAddr!;
  const own = new Set(Object.values(plan.bundle.hostPorts ?? {}));
  const foreign = (await loopbackOccupants({ ...sources, addr })).filter((o) => (o.container === null ? !own.has(o.port) : o.container !== plan.bundle.container));
  if (foreign.length === 0) return;
  const what = [...new Set(foreign.map((o) => (o.container ? `port ${o.port} (docker container ${o.container})` : `port ${o.port}`)))].join(", ");
  throw new BbError(
    "VM",
    `Cannot start the smolvm machine for ${plan.slug}: ${addr}, the only address it may reach, is also bound by something that is not this bottle's bundle (${what}), which the VM would reach too. Another state root's or user's bottle, or a host service, took the address after bb-bundle picked it: tear this bottle down and start it again to pick another`,
    { details: { slug: plan.slug, addr, foreign } },
  );
}

export async function startSmolvmAgent(plan: Bundled, opts: SmolvmVmOptions): Promise<Plan> {
  const addr = plan.bundle.loopbackAddr;
  if (!addr) throw new BbError("VM", `Plan for ${plan.slug} has no loopback address: was it bundled for the smolmachines backend?`);
  const image = await opts.agentImage();
  const packed = await opts.pack(image.ref);
  if (opts.signal?.aborted) throw opts.signal.reason;
  await refuseSharedAddress(plan, opts.occupants);
  const name = names.machine(plan.slug);
  const env = machineEnv(plan);
  // smolvm counts whole vCPUs: a fraction rounds up, so the guest gets at least as many.
  const limits = agentLimits(plan.bottle.limits);
  const size = { memMiB: limits.memoryMiB, ...(limits.cpus === undefined ? {} : { cpus: Math.min(255, Math.ceil(limits.cpus)) }) };
  log.step(`vm: creating smolvm machine ${name} (allowlist ${addr}/32)`);
  const { allowlistPatched } = await opts.smolvm.create({ name, from: packed.artifact, allowCidrs: [`${addr}/32`], env, ...size });
  if (allowlistPatched) log.step(`vm: wrote the allowlist into smolvm's state DB (this smolvm drops it with --from)`);
  try {
    if (opts.signal?.aborted) throw opts.signal.reason;
    log.step(`vm: starting ${name}`);
    await opts.smolvm.start(name);
  } catch (e) {
    await opts.smolvm.delete(name).catch(() => {});
    throw e;
  }
  const started: Plan = {
    ...plan,
    vm: {
      kind: "smolvm",
      image: image.ref,
      imageId: image.id,
      name,
      id: null,
      artifact: packed.artifact,
      user: AGENT.user,
      home: AGENT.home,
      env,
      startedAt: (opts.now ?? (() => new Date()))().toISOString(),
    },
  };
  await opts.handOver?.(started).catch(async (e: unknown) => {
    await opts.smolvm.delete(name).catch((de: Error) => log.warn(`rollback: could not delete smolvm machine ${name}: ${de.message}`));
    throw e;
  });
  return started;
}

/** argv running `argv` as the agent user inside the VM, with the bundle's URLs (read as
 * the agent: root's shell never sources anything with the bottle's declared env). */
export function asAgent(argv: string[]): string[] {
  return ["runuser", "-u", AGENT.user, "--", "env", `HOME=${AGENT.home}`, `USER=${AGENT.user}`, "/bin/sh", "-c", WITH_BUNDLE_ENV, "sh", ...argv];
}

/** Run as root with bytes on stdin (provisioning), capturing output. */
export function smolvmExecRoot(smolvm: Smolvm, plan: Vmd, argv: string[], input: RunOptions["input"], env?: Record<string, string | undefined>): Promise<RunResult> {
  const root = rootExec(plan, { bundleEnv: true });
  const full = smolvm.execArgv({ name: plan.vm.name, argv: root.wrap(argv), env: root.env, interactive: true });
  return run(full, { input, env, expect: ANY_EXIT });
}

/** Interactive exec as the agent user; a TTY session goes through bb-pty-resize. */
export function smolvmExecInteractive(smolvm: Smolvm, plan: Vmd, argv: string[], o: { tty: boolean; workdir?: string; ptyResize: string; root?: boolean }): Promise<number> {
  const root = o.root ? rootExec(plan, { bundleEnv: true }) : undefined;
  const full = smolvm.execArgv({ name: plan.vm.name, argv: root ? root.wrap(argv) : asAgent(argv), env: root?.env, tty: o.tty, interactive: true, workdir: o.workdir });
  return runInteractive(o.tty ? [o.ptyResize, "--name", plan.vm.name, "--", ...full] : full);
}
