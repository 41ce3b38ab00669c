// The docker backend's agent: a container from the agent image on the bottle's internal
// network only (so the bundle is all it can reach), idling until bb-vm exec/attach run
// commands in it as user node.
import { randomBytes } from "node:crypto";
import process from "node:process";
import { holdCliErrors, RUNTIME_LINE_STARTS, runtimeLineOff, type HeldCliErrors } from "../docker/cli-errors.ts";
import { BbError, isBbError } from "../errors.ts";
import { log } from "../log.ts";
import { BOTTLE_LOG_LIMIT, isNameInUse, PIDS_LIMIT, removeContainer, runContainer } from "../docker/container.ts";
import { boundedCallMs } from "../docker/cmd.ts";
import { engineClockOffset, execStarted } from "../docker/exec-started.ts";
import { inspectContainer } from "../docker/inspect.ts";
import { END_GRACE_MS, endMarked, execArgs, execIn, marked } from "../docker/exec.ts";
import { bottleLabels } from "../docker/labels.ts";
import { otherRoot, realRoot } from "../inventory/collect.ts";
import { refuseSlugElsewhere } from "../inventory/taken.ts";
import { AGENT, names } from "../layout.ts";
import type { Plan } from "../plan/schema.ts";
import { run, runInteractive, ANY_EXIT, type RunOptions, type RunResult } from "../proc.ts";
import { agentEnv, type RootExec } from "./env.ts";
import { agentLimits } from "./limits.ts";

export interface AgentImage {
  ref: string;
  id: string | null;
}

interface VmOptions {
  agentImage: () => Promise<AgentImage>;
  extraLabels?: Record<string, string>;
  /** DNS servers docker's resolver forwards outside names to (default: docker's). The
   * internal network must never let such a query leave; tests point this at a recorder. */
  dns?: string[];
  signal?: AbortSignal;
  /** The caller's last steps before its plan goes out (bb-vm: saving it, then lib/cli.ts's
   * lastStop), given the plan with the agent started: what fails or is interrupted there
   * removes the agent again, so a plan that never went out leaves none behind. */
  handOver?: (started: Plan) => Promise<void>;
  now?: () => Date;
}

type Bundled = Plan & { bundle: NonNullable<Plan["bundle"]> };
type Vmd = Plan & { vm: NonNullable<Plan["vm"]> };

/**
 * The ID of the internal network bb-bundle made for this plan (null in a plan written
 * before IDs were recorded, and for smolmachines): by it, the agent joins only that
 * network, never another state root's of the same name.
 */
export function internalNetworkId(plan: Bundled): string | null {
  return plan.backend === "docker" ? (plan.bundle.networkIds?.internal ?? null) : null;
}

export async function startDockerAgent(plan: Bundled, opts: VmOptions): Promise<Plan> {
  if (!plan.bundle.networks.internal) throw new BbError("VM", `Plan for ${plan.slug} has no internal network: was it bundled for the docker backend?`);
  const image = await opts.agentImage();
  if (opts.signal?.aborted) throw opts.signal.reason;
  const name = names.agent(plan.slug);
  const env = agentEnv(plan);
  log.step(`vm: starting ${name} on ${plan.bundle.networks.internal} only`);
  const networkId = internalNetworkId(plan);
  let id: string;
  try {
    id = await runContainer({
      name,
      image: image.ref,
      labels: bottleLabels({ slug: plan.slug, backend: plan.backend, agent: plan.agent.name, stateRoot: plan.stateRoot, role: "agent", extra: opts.extraLabels }),
      network: networkId ?? plan.bundle.networks.internal,
      env,
      dns: opts.dns,
      init: true,
      user: AGENT.user,
      workdir: AGENT.home,
      hostname: plan.slug,
      logLimit: BOTTLE_LOG_LIMIT,
      entrypoint: "sleep",
      cmd: ["infinity"],
      // No raw sockets (no forged packets on the internal network) and no device nodes.
      // Root keeps the rest, and no-new-privileges is not set: with it, docker exec -u 0
      // into a container whose user is node gets no capabilities at all, and bb-provision
      // installs the CA and copies files as root that way.
      capDrop: ["NET_RAW", "MKNOD", "SETFCAP", "AUDIT_WRITE", "SYS_CHROOT"],
      pidsLimit: PIDS_LIMIT.agent,
      ...agentLimits(plan.bottle.limits),
    });
    if (opts.signal?.aborted) throw opts.signal.reason;
  } catch (e) {
    // A name already in use is another run's container, live or not: never ours to remove.
    const nameTaken = isNameInUse(e);
    // Even after docker run went unanswered: it may have created the container and hung
    // starting it, which leaves one "Created" that nothing else removes.
    if (!nameTaken) await removeContainer(name, { undoing: true }).catch(() => {});
    // Joined by ID, nothing asked beforehand whether the slug is another root's (bb-vm):
    // docker refusing the name, or the network gone, may be that. Asked now, on failure
    // only; an interrupt, an engine that did not answer, or one that cannot be asked
    // leaves the error as it is.
    if (networkId && !opts.signal?.aborted && !(isBbError(e) && e.code === "TIMEOUT")) {
      await refuseSlugElsewhere({ slug: plan.slug, stateRoot: plan.stateRoot, engineOptional: true });
    }
    if (nameTaken) {
      throw new BbError("VM", `Cannot start the agent: container ${name} already exists: bottle ${plan.slug} has an agent already, which this plan did not start (bb-list --all shows it; bb-cleanup --slug ${plan.slug} removes the bottle, then start it again)`, { cause: e });
    }
    if (networkId && isBbError(e) && new RegExp(`network ${networkId} not found`).test(e.message)) {
      throw new BbError("VM", `Cannot start the agent: bottle ${plan.slug}'s internal network ${plan.bundle.networks.internal} (ID ${networkId.slice(0, 12)}) is gone since bb-bundle made it (docker network rm or prune, or bb-cleanup); bb-cleanup --slug ${plan.slug} removes the rest of the bottle, then start it again`, { cause: e });
    }
    throw e;
  }
  const started: Plan = {
    ...plan,
    vm: {
      kind: "docker",
      image: image.ref,
      imageId: image.id,
      name,
      id,
      artifact: null,
      user: AGENT.user,
      home: AGENT.home,
      env,
      startedAt: (opts.now ?? (() => new Date()))().toISOString(),
    },
  };
  // By the id docker gave it: a container of that name may be another root's by then.
  await opts.handOver?.(started).catch(async (e: unknown) => {
    await removeContainer(id, { undoing: true }).catch((re: Error) => log.warn(`rollback: could not remove container ${name}: ${re.message}`));
    throw e;
  });
  return started;
}

interface ExecOptions {
  /** As root, in root's environment (rootExec). */
  root?: RootExec;
  tty?: boolean;
  interactive?: boolean;
  /** Written to the command's stdin (captured runs only). */
  input?: RunOptions["input"];
  workdir?: string;
  /** Marks the command's processes (EXEC_MARK, marked) for endMarked and execStarted. */
  mark?: string;
}

/**
 * What docker exec and inspect address the agent container by. Its name is one namespace for
 * every state root, so once this root's container is removed, another root's bottle of the
 * same slug may hold that name; the id bb-vm recorded is only ever the container it started,
 * so its removal reads as "is gone" (agentGone) rather than a session in the other root's
 * bottle. The id costs no docker call. A plan saved before ids were recorded has only the
 * name: one inspect reads its labels first, and another root's container is refused.
 */
export async function agentContainer(plan: Vmd): Promise<string> {
  if (plan.vm.id !== null) return plan.vm.id;
  // No answer from docker: the exec that follows fails with docker's own words.
  const info = await inspectContainer(plan.vm.name).catch(() => null);
  if (info === null) return plan.vm.name;
  const other = otherRoot(info.labels, realRoot(plan.stateRoot));
  if (other !== null) {
    throw new BbError(
      "SLUG_TAKEN",
      `Cannot reach bottle ${plan.slug}'s agent: container ${plan.vm.name} is a bottle of state root ${other}, not of this one (docker names containers by slug alone, one namespace for every state root on this engine), so this root's agent container is gone; reach that bottle from its own root (BB_STATE_DIR=${other})`,
      { details: { slug: plan.slug, stateRoot: other } },
    );
  }
  return info.id;
}

/** The command line `docker exec` runs in the agent container for `argv`. Through sh's exec,
 * argv as it is (env would take a first word with "=" for a variable): a command that is
 * not there exits 127 as in a shell, not docker's 126 with an OCI runtime error. */
const inAgent = (argv: string[], o: ExecOptions) => {
  const cmd = o.root ? o.root.wrap(argv) : ["sh", "-c", 'exec "$@"', "sh", ...argv];
  return o.mark ? marked(o.mark, cmd) : cmd;
};

/** argv of `docker exec` into `container` (an id or name: see agentContainer). */
export function agentExecArgv(container: string, argv: string[], o: ExecOptions): string[] {
  const flags = [...(o.interactive ? ["--interactive"] : []), ...(o.tty ? ["--tty"] : [])];
  // HOME is one of the names that travel on argv, so no child env is needed.
  const { args } = execArgs(container, inAgent(argv, o), {
    user: o.root ? "0" : AGENT.user,
    env: o.root ? o.root.env : { HOME: AGENT.home },
    workdir: o.workdir,
  }, flags);
  return ["docker", ...args];
}

/** Run a command in the agent container `container` to its end, capturing its output,
 * whatever its exit code; the runtime's refusal to start it is on stderr (runtimeLineOff). */
export async function execCaptured(container: string, argv: string[], o: ExecOptions = {}): Promise<RunResult> {
  const opts = { ...o, interactive: o.interactive || o.input !== undefined };
  return runtimeLineOff(await run(agentExecArgv(container, argv, opts), { expect: ANY_EXIT, input: o.input }));
}

/** How long an exec may run before bb-vm asks the engine, once, whether it answers at all. */
const ENGINE_CHECK_AFTER_MS = 1000;

/** Run a command with the caller's stdio (attach, exec from a terminal): its exit code, and
 * the docker CLI's own lines on why it could not start, held back from stderr for the
 * caller to release (they were the command's) or replace with a line of its own; the same
 * for the runtime's line on stdout (`out`; without a terminal: with one, docker's stdout
 * must be the terminal, whose size it reads, and the session's output is for people); and with a
 * terminal (o.tty) what docker said on stderr, held or not (the command's own output goes
 * through the terminal), so that a session docker never started can be told from a
 * command that failed; without one, docker's words and the command's share stderr: "".
 * Without one, `askStarted` has the engine asked instead, once a command exits non-zero,
 * whether it started the exec at all (`neverStarted`: it did not, or refused it).
 *
 * The docker CLI waits forever on an engine that takes the connection and never answers,
 * and the exec cannot be bounded as a whole (a command runs as long as it runs). So one
 * still running after ENGINE_CHECK_AFTER_MS has the engine asked its version, bounded as
 * every such call: an engine that does not answer that either is hung. One that answers
 * is asked whether it started the exec (execStarted), until BB_DOCKER_TIMEOUT after the
 * exec began: an engine stuck on just that call (or on the exec's create) is hung too.
 * Either way the CLI waiting on it is ended with a TIMEOUT naming the bottle. */
export async function execInteractive(
  container: string,
  argv: string[],
  o: ExecOptions & { slug: string; askStarted?: boolean },
): Promise<{ code: number; cli: HeldCliErrors; out: HeldCliErrors; dockerSaid: string; neverStarted: boolean }> {
  let cli: HeldCliErrors | undefined;
  let out: HeldCliErrors = { text: () => "", said: () => "", release: () => {} };
  const hung = new AbortController();
  const done = new AbortController();
  // docker cannot end the command once its client is gone: if bb-vm dies first (SIGKILL,
  // SIGTERM, Ctrl-C without a terminal), what it leaves behind ends the command's processes,
  // found by their mark; with a terminal by its hangup, as a terminal closing would. The
  // mark also makes the command line this exec's alone for the engine checks (watchEngine,
  // notStarted), so an earlier session of the same command is not taken for this one.
  const mark = randomBytes(8).toString("hex");
  const mo = { ...o, mark };
  const orphaned = { argv: agentExecArgv(container, endMarked(mark, o.tty ? "HUP" : "TERM"), { root: o.root }), timeoutMs: boundedCallMs() + END_GRACE_MS };
  const began = Date.now();
  const what = `Cannot run ${argv[0]} in bottle ${o.slug}`;
  const cmd = inAgent(argv, mo);
  const check = setTimeout(() => {
    watchEngine(container, cmd, { what, since: Date.now() - ENGINE_CHECK_AFTER_MS, signal: done.signal }).catch((e: unknown) => {
      if (done.signal.aborted) return;
      if (isBbError(e) && e.code === "TIMEOUT") hung.abort(e);
      // The engine could not say (an older one without such events, say): the exec waits as it would.
      else log.debug(`not watching the engine for ${argv[0]}: ${(e as Error).message}`);
    });
  }, ENGINE_CHECK_AFTER_MS);
  try {
    const code = await runInteractive(agentExecArgv(container, argv, mo), {
      orphaned,
      stdout: o.tty ? undefined : (stream) => void (out = holdCliErrors(stream, process.stdout, RUNTIME_LINE_STARTS)),
      stderr: (stream) => void (cli = holdCliErrors(stream, process.stderr)),
      signal: hung.signal,
      // A docker CLI ended with SIGTERM says why in a line of its own ("unexpected EOF"),
      // where bb-vm says it in its own; with a terminal, it must put the terminal back first.
      killWith: o.tty ? "SIGTERM" : "SIGKILL",
    });
    if (hung.signal.aborted) throw hung.signal.reason;
    const neverStarted = code !== 0 && !o.tty && Boolean(o.askStarted) && (await notStarted(container, cmd, { since: began, what }));
    return { code, cli: cli!, out, dockerSaid: o.tty ? cli!.said().trim() : "", neverStarted };
  } finally {
    clearTimeout(check);
    done.abort();
  }
}

/** Whether the engine says it never started the exec of `cmd` (begun at `since`); false
 * when it cannot say (an older engine without such events): the exit code then stands as
 * the command's, as it did before this was asked. */
async function notStarted(container: string, cmd: string[], o: { since: number; what: string }): Promise<boolean> {
  try {
    return !(await execStarted(container, cmd, { ...o, offsetMs: await engineClockOffset(o) }));
  } catch (e) {
    log.debug(`could not ask the engine whether it started ${cmd.join(" ")}: ${(e as Error).message}`);
    return false;
  }
}

/** Settles once the engine has started the exec of `cmd` (begun at `since`); throws TIMEOUT
 * when it does not answer, or has not started it BB_DOCKER_TIMEOUT after `since`. */
async function watchEngine(container: string, cmd: string[], o: { what: string; since: number; signal: AbortSignal }): Promise<void> {
  const { what, signal } = o;
  const offsetMs = await engineClockOffset({ what, signal });
  const limitMs = boundedCallMs();
  while (!signal.aborted) {
    // Each asks up to a second ahead (execStarted), so this loop is paced by the engine.
    if (await execStarted(container, cmd, { ...o, offsetMs })) return;
    if (Date.now() - o.since >= limitMs) {
      throw new BbError("TIMEOUT", `${what}: the Docker engine answers, yet did not start the command within ${limitMs / 1000} s (\`docker exec\` waits on it). Is it hung? Restart it and try again (BB_DOCKER_TIMEOUT=SECONDS allows a slow engine longer).`, {
        details: { container, timeoutMs: limitMs },
      });
    }
  }
}

/** Why the agent container cannot run a command ("is gone", "is being removed", "is
 * paused", "is stopped"), or null when it can, or when docker cannot say.
 *
 * `killed`: the command died of SIGKILL (exit 137), as every command in a container does
 * when `docker rm -f` or a stop kills it; docker can still report that container running
 * for a moment after. So a container reported running is asked to run `true`: one whose
 * processes were all killed cannot, and is looked at again for up to ~2 s; one that can
 * is up (the command was killed on its own: kill -9, the OOM killer), said at once. */
export async function agentGone(container: string, opts: { killed?: boolean } = {}): Promise<string | null> {
  let probed = false;
  for (let tries = opts.killed ? 20 : 1; ; ) {
    const info = await inspectContainer(container).catch(() => undefined);
    if (info === undefined) return null;
    if (info === null) return "is gone";
    if (info.state.status === "removing") return "is being removed";
    // Paused counts as running, yet runs nothing until `docker unpause`.
    if (info.state.status === "paused") return "is paused";
    if (!info.state.running) return "is stopped";
    if (--tries === 0) return null;
    if (!probed) {
      probed = true;
      const probe = await execIn(container, ["true"], { expect: ANY_EXIT, timeoutMs: 5000 }).catch(() => null);
      if (probe?.code === 0) return null;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether `dir` is not there in the running container (false also when docker cannot say). */
export async function folderGone(container: string, dir: string): Promise<boolean> {
  const r = await execIn(container, ["test", "-d", dir], { user: "0", expect: ANY_EXIT, timeoutMs: 5000 }).catch(() => null);
  return r?.code === 1;
}
