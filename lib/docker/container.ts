// Container lifecycle: run detached from a spec, signal, stop, remove. The spec is turned
// into argv by a pure function (runArgs) so what docker is asked to do can be checked
// without docker.
import { BbError } from "../errors.ts";
import { boundedDocker, failure, isNoSuch } from "./cmd.ts";
import { envArgs } from "./env.ts";
import { labelArgs } from "./labels.ts";

export interface Mount {
  /** A host path (bind, the default) or a named volume's name. */
  type?: "bind" | "volume";
  source: string;
  target: string;
  readOnly?: boolean;
}

interface ContainerSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  /** The network the container starts on (docker < 25 takes one network at run time;
   * add more with connectNetwork). */
  network?: string;
  /** Names the container answers to on `network`. */
  aliases?: string[];
  /** Passed by name: values stay out of argv (see env.ts). */
  env?: Record<string, string>;
  /** DNS servers docker's embedded resolver forwards names it does not know to (--dns). */
  dns?: string[];
  mounts?: Mount[];
  /** Container TCP ports to publish on a random host port of `publishAddress`. */
  publish?: number[];
  /** Host address for `publish` (default 127.0.0.1; smolmachines on macOS uses a
   * per-bottle loopback alias). */
  publishAddress?: string;
  /** Run docker's init as PID 1 (reaps zombies, forwards signals). */
  init?: boolean;
  user?: string;
  workdir?: string;
  hostname?: string;
  entrypoint?: string;
  cmd?: string[];
  capDrop?: string[];
  capAdd?: string[];
  securityOpt?: string[];
  /** At most this many processes and threads at once (`--pids-limit`). */
  pidsLimit?: number;
  /** At most this much memory (MiB), swap included: past it the kernel's OOM killer
   * picks a process inside the container, never one of yours (`--memory`). */
  memoryMiB?: number;
  /** At most this many CPUs' worth of time (`--cpus`, fractions allowed). */
  cpus?: number;
  /** Keep at most this much of the container's output, in docker's `local` log driver
   * (rotated files; `docker logs` reads it), whatever the engine's default driver: what a
   * bottle writes to its log is partly the agent's doing, and must not fill your disk. */
  logLimit?: { fileMiB: number; files: number };
}

/** A bottle's containers keep at most 30 MiB of log each. */
export const BOTTLE_LOG_LIMIT = { fileMiB: 10, files: 3 } as const;

/**
 * Processes and threads a bottle's containers may hold at once. A fork bomb, or a test
 * runner gone wrong, stops at the limit instead of exhausting your machine's process
 * table; a build with a few hundred compilers and node's threads stays far below it.
 */
export const PIDS_LIMIT = { agent: 4096, bundle: 1024 } as const;

/** Memory (MiB) the bundle may use. Its daemons idle near 80 MiB together; the headroom is
 * for git-gate packing a large repository. (The agent's is the bottle's: lib/vm/limits.ts.) */
export const BUNDLE_MEMORY_MIB = 2048;

export function runArgs(spec: ContainerSpec): { args: string[]; childEnv: Record<string, string> } {
  const env = envArgs(spec.env);
  const args = ["run", "--detach", "--name", spec.name, "--restart", "no", ...labelArgs(spec.labels)];
  if (spec.network) args.push("--network", spec.network);
  for (const alias of spec.aliases ?? []) args.push("--network-alias", alias);
  for (const server of spec.dns ?? []) args.push("--dns", server);
  args.push(...env.args);
  for (const m of spec.mounts ?? []) {
    args.push("--mount", `type=${m.type ?? "bind"},${csvField(`source=${m.source}`)},${csvField(`target=${m.target}`)}${m.readOnly ? ",readonly" : ""}`);
  }
  const addr = spec.publishAddress ?? "127.0.0.1";
  for (const port of spec.publish ?? []) args.push("--publish", `${addr}::${port}/tcp`);
  if (spec.init) args.push("--init");
  if (spec.user) args.push("--user", spec.user);
  if (spec.workdir) args.push("--workdir", spec.workdir);
  if (spec.hostname) args.push("--hostname", spec.hostname);
  for (const c of spec.capDrop ?? []) args.push("--cap-drop", c);
  for (const c of spec.capAdd ?? []) args.push("--cap-add", c);
  for (const o of spec.securityOpt ?? []) args.push("--security-opt", o);
  if (spec.pidsLimit !== undefined) args.push("--pids-limit", String(spec.pidsLimit));
  // The same figure for --memory-swap: no swap beyond the limit, so the ceiling is real.
  if (spec.memoryMiB !== undefined) args.push("--memory", `${spec.memoryMiB}m`, "--memory-swap", `${spec.memoryMiB}m`);
  if (spec.cpus !== undefined) args.push("--cpus", String(spec.cpus));
  if (spec.logLimit) args.push("--log-driver", "local", "--log-opt", `max-size=${spec.logLimit.fileMiB}m`, "--log-opt", `max-file=${spec.logLimit.files}`);
  if (spec.entrypoint !== undefined) args.push("--entrypoint", spec.entrypoint);
  args.push(spec.image, ...(spec.cmd ?? []));
  return { args, childEnv: env.childEnv };
}

// --mount is parsed as one CSV record, so a path holding a comma or quote must be quoted.
function csvField(field: string): string {
  return /[",]/.test(field) ? `"${field.replaceAll('"', '""')}"` : field;
}

/** Start a container detached; returns its ID. A name already taken fails with an error
 * isNameInUse() knows: that container is another run's, never the caller's to remove. */
export async function runContainer(spec: ContainerSpec): Promise<string> {
  const { args, childEnv } = runArgs(spec);
  // Quoted whole (every label, variable and mount), the call would fill a screen.
  const shown = `docker run --detach --name ${spec.name} ... ${spec.image}`;
  const r = await boundedDocker(args, { env: childEnv, expect: [0, 125], what: `Cannot start container ${spec.name}`, shown });
  if (r.code === 0) return r.stdout.trim();
  const failed = failure(r, `Cannot start container ${spec.name}`);
  if (/is already in use/.test(r.stderr)) failed.details.nameInUse = true;
  throw failed;
}

export function isNameInUse(e: unknown): boolean {
  return e instanceof BbError && e.details.nameInUse === true;
}

/** Remove (forcibly: a running container is killed first); false when it did not exist. */
export async function removeContainer(name: string, opts: { undoing?: boolean } = {}): Promise<boolean> {
  const r = await boundedDocker(["rm", "--force", "--volumes", name], { expect: [0, 1], undoing: opts.undoing });
  // `rm --force` exits 0 for a missing container too; only a removal echoes the name.
  if (r.code === 0) return r.stdout.trim() !== "";
  if (isNoSuch(r.stderr)) return false;
  throw failure(r, `Cannot remove container ${name}`);
}
