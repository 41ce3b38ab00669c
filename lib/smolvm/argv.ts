// The argv for each smolvm subcommand bot-bottle uses, per CLI generation. Pure functions,
// so the per-version shapes are unit-tested without a smolvm binary. Callers never spell
// a smolvm argv themselves: smolvm's name style changed between releases (see version.ts).
import { BbError } from "../errors.ts";
import type { SmolvmCapabilities } from "./version.ts";

export interface CreateSpec {
  name: string;
  /** The .smolmachine artifact the machine boots from. */
  from: string;
  /** TSI allowlist, e.g. ["127.0.0.1/32"]. Non-empty turns networking on. */
  allowCidrs: string[];
  /** Guest environment. Its values are on the host's process list while create runs, and
   * in smolvm's state DB after: no credential ever (placeholders only), and nothing that
   * carries the bottle's agent key (lib/vm/env.ts machineEnv). */
  env: Record<string, string>;
  /** The guest's vCPUs (`--cpus`, a whole number) and memory ceiling in MiB (`--mem`);
   * absent, smolvm's own default. */
  cpus?: number;
  memMiB?: number;
}

export interface ExecSpec {
  name: string;
  /** The guest command: on the host's process list while exec runs, as `env` is. */
  argv: string[];
  env?: Record<string, string>;
  workdir?: string;
  /** Allocate a PTY in the guest (`-t`). */
  tty?: boolean;
  /** Keep stdin open to the guest command (`-i`). */
  interactive?: boolean;
}

function envFlags(env: Record<string, string> | undefined): string[] {
  return Object.entries(env ?? {}).flatMap(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new BbError("SMOLVM", `Cannot pass env var ${JSON.stringify(k)} to smolvm: not a valid variable name`);
    return ["-e", `${k}=${v}`];
  });
}

function checkName(name: string): string {
  // A name starting with "-" would be read as a flag; one with ":" breaks `machine cp`.
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    throw new BbError("SMOLVM", `Invalid smolvm machine name ${JSON.stringify(name)}: use letters, digits, '.', '_' and '-'`);
  }
  return name;
}

export function createArgv(bin: string, caps: SmolvmCapabilities, spec: CreateSpec): string[] {
  const name = checkName(spec.name);
  // 0.8.0 ignores --allow-cidr together with --from unless --net is given too.
  const net = spec.allowCidrs.length > 0 ? ["--net", ...spec.allowCidrs.flatMap((c) => ["--allow-cidr", c])] : [];
  const resources = [...(spec.cpus === undefined ? [] : ["--cpus", String(spec.cpus)]), ...(spec.memMiB === undefined ? [] : ["--mem", String(spec.memMiB)])];
  const flags = ["--from", spec.from, ...net, ...resources, ...envFlags(spec.env)];
  return caps.nameStyle === "flag" ? [bin, "machine", "create", "--name", name, ...flags] : [bin, "machine", "create", ...flags, name];
}

export function startArgv(bin: string, _caps: SmolvmCapabilities, name: string): string[] {
  return [bin, "machine", "start", "--name", checkName(name)];
}

export function stopArgv(bin: string, _caps: SmolvmCapabilities, name: string): string[] {
  return [bin, "machine", "stop", "--name", checkName(name)];
}

export function statusArgv(bin: string, _caps: SmolvmCapabilities, name: string): string[] {
  return [bin, "machine", "status", "--name", checkName(name)];
}

/** `-f` skips smolvm's confirmation prompt (there is no one to answer it). */
export function deleteArgv(bin: string, caps: SmolvmCapabilities, name: string): string[] {
  checkName(name);
  return caps.nameStyle === "flag" ? [bin, "machine", "delete", "--name", name, "-f"] : [bin, "machine", "delete", "-f", name];
}

export function execArgv(bin: string, _caps: SmolvmCapabilities, spec: ExecSpec): string[] {
  if (spec.argv.length === 0) throw new BbError("SMOLVM", `Cannot exec in ${spec.name}: empty command`);
  return [
    bin,
    "machine",
    "exec",
    "--name",
    checkName(spec.name),
    ...envFlags(spec.env),
    ...(spec.workdir ? ["-w", spec.workdir] : []),
    ...(spec.interactive ? ["-i"] : []),
    ...(spec.tty ? ["-t"] : []),
    "--",
    ...spec.argv,
  ];
}

// smolvm tells the guest side by the first ":" (SRC before DST), so a host path with a
// colon would be taken for a machine name.
function checkCpPaths(what: string, hostPath: string, guestPath: string) {
  if (hostPath.includes(":")) throw new BbError("SMOLVM", `${what}: host path ${JSON.stringify(hostPath)} contains ':', which smolvm reads as MACHINE:PATH`);
  if (!guestPath.startsWith("/")) throw new BbError("SMOLVM", `${what}: guest path ${JSON.stringify(guestPath)} must be absolute`);
}

/** Copy into the guest: `smolvm machine cp SRC NAME:/guest/path`. */
export function cpInArgv(bin: string, _caps: SmolvmCapabilities, name: string, hostPath: string, guestPath: string): string[] {
  checkCpPaths(`Cannot copy into ${name}`, hostPath, guestPath);
  return [bin, "machine", "cp", hostPath, `${checkName(name)}:${guestPath}`];
}

/** Copy out of the guest: `smolvm machine cp NAME:/guest/path DST`. */
export function cpOutArgv(bin: string, _caps: SmolvmCapabilities, name: string, guestPath: string, hostPath: string): string[] {
  checkCpPaths(`Cannot copy out of ${name}`, hostPath, guestPath);
  return [bin, "machine", "cp", `${checkName(name)}:${guestPath}`, hostPath];
}

export function lsArgv(bin: string): string[] {
  return [bin, "machine", "ls", "--json"];
}

export function packCreateArgv(bin: string, image: string, output: string): string[] {
  return [bin, "pack", "create", "--image", image, "-o", output];
}

export function versionArgv(bin: string): string[] {
  return [bin, "--version"];
}
