// The smolvm stand-in's entry point (see README.md). Strict: every call is appended to
// $FAKE_SMOLVM_LOG first, and an argv the chosen release would not accept exits 2 with
// clap's wording, so tests can assert on the calls and fail on surprises.
import { appendFileSync, existsSync, writeFileSync, chmodSync } from "node:fs";
import process from "node:process";
import { setLogLevel } from "../../../lib/log.ts";
import { run, runInteractive, start } from "../../../lib/proc.ts";
import { grammar, has, parse, UsageError, value, values, versionAtLeast, type Parsed } from "./grammar.ts";
import { allowedAddresses, stopRelays, syncRelays } from "./relay.ts";
import { containerName, imageTag, loadArtifact, removeContainer, startContainer, stopContainer } from "./runtime.ts";
import { deleteMachine, FakeError, getMachine, listMachines, putMachine, requireMachine, type MachineRecord } from "./state.ts";

const SUPPORTED = ["0.8.0", "0.8.1", "1.0.2", "1.8.0"];

function out(text: string) {
  process.stdout.write(text);
}

type Handler = (p: Parsed, version: string) => Promise<number>;

/** --cpus (u8) and --mem (u32) as smolvm's clap parser reads them: a whole number in range. */
function wholeNumber(p: Parsed, key: string, max: number): number | undefined {
  const v = value(p, key);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) > max) throw new FakeError(`invalid value '${v}' for '--${key}': expected a whole number from 0 to ${max}`);
  return Number(v);
}

const handlers: Record<string, Handler> = {
  "machine create": async (p, version) => {
    const name = value(p, "name") ?? p.positionals[0]!;
    if (await getMachine(name)) throw new FakeError(`machine '${name}' already exists`);
    const from = value(p, "from");
    if (!from) throw new FakeError("the stand-in only creates machines --from a .smolmachine artifact");
    if (!existsSync(from)) throw new FakeError(`artifact not found: ${from}`);
    const cidrs = values(p, "allow-cidr");
    // The bug the driver works around: before 1.8.0, --from drops the allowlist (0.8.0
    // stores null, later releases an empty list) and --allow-cidr alone does not enable
    // the network.
    const honoursAllowlist = versionAtLeast(version, "1.8.0");
    const record: MachineRecord = {
      name,
      state: "created",
      pid: null,
      image: null,
      source: from,
      network: has(p, "net") || (honoursAllowlist && cidrs.length > 0),
      allowed_cidrs: honoursAllowlist ? (cidrs.length ? cidrs : null) : version === "0.8.0" ? null : [],
      env: values(p, "env"),
      cpus: wholeNumber(p, "cpus", 255) ?? 1,
      memory_mib: wholeNumber(p, "mem", 2 ** 32 - 1) ?? 512,
      created_at: new Date().toISOString(),
      container: null,
    };
    await putMachine(record);
    out(`Created machine: ${name}\n`);
    return 0;
  },

  "machine start": async (p) => {
    const m = await requireMachine(value(p, "name")!);
    if (m.state === "running") throw new FakeError(`machine '${m.name}' is already running`);
    const cidrs = m.allowed_cidrs ?? [];
    // Network modes (see README): off -> no interfaces; on without allowlist -> docker
    // bridge (open egress, like smolvm); allowlist -> no interfaces plus TCP relays to the
    // allowed host addresses, which is what TSI gives the guest.
    const network = !m.network || cidrs.length > 0 ? "none" : "bridge";
    if (m.network) allowedAddresses(cidrs);
    const tag = imageTag(m.name);
    await loadArtifact(m.source, tag);
    const c = await startContainer({ machine: m, tag, network });
    try {
      if (network === "none" && m.network) await syncRelays({ name: m.name, pid: c.pid, cidrs });
    } catch (e) {
      // A start that fails leaves the machine stopped, as smolvm does, not a guest running.
      stopRelays(m.name);
      await stopContainer(c.id);
      throw e;
    }
    await putMachine({ ...m, state: "running", pid: c.pid, container: c.id });
    out(`Started machine: ${m.name}\n`);
    return 0;
  },

  "machine stop": async (p) => {
    const m = await requireMachine(value(p, "name")!);
    if (m.state !== "running") throw new FakeError(`machine '${m.name}' is not running`);
    stopRelays(m.name);
    if (m.container) await stopContainer(m.container);
    await putMachine({ ...m, state: "stopped", pid: null });
    out(`Stopped machine: ${m.name}\n`);
    return 0;
  },

  "machine delete": async (p) => {
    const name = value(p, "name") ?? p.positionals[0]!;
    if (!has(p, "force")) throw new FakeError("the stand-in has no terminal to confirm on: pass -f");
    const m = await requireMachine(name);
    stopRelays(m.name);
    // By name when no container was recorded: a `machine start` killed midway may have
    // made one without writing it down.
    await removeContainer(m.container ?? containerName(m.name), imageTag(m.name));
    await deleteMachine(name);
    out(`Deleted machine: ${name}\n`);
    return 0;
  },

  "machine status": async (p) => {
    const m = await requireMachine(value(p, "name")!);
    out(m.state === "running" ? `Machine '${m.name}': running (PID ${m.pid})\n` : `Machine '${m.name}': ${m.state}\n`);
    return 0;
  },

  "machine exec": async (p, version) => {
    const m = await requireMachine(value(p, "name")!);
    if (m.state !== "running" || !m.container) throw new FakeError(`machine '${m.name}' is not running (start it with: smolvm machine start --name ${m.name})`);
    if (m.network && m.allowed_cidrs?.length && m.pid) await syncRelays({ name: m.name, pid: m.pid, cidrs: m.allowed_cidrs });
    const tty = has(p, "tty");
    // A PTY exec is `docker exec -it`, so terminal size handling can be tested for real.
    // Before 0.8.1 smolvm never forwards the window size: docker only sends one when its
    // stdout is a terminal, so there its stdout goes through a pipe and the guest PTY
    // stays at 0x0 until something (bb-pty-resize) sets it.
    // smolvm's exec is always root, whatever USER the image names (the agent image says node).
    const argv = [
      "docker",
      "exec",
      "-u",
      "0",
      ...(tty ? ["-it"] : has(p, "interactive") ? ["-i"] : []),
      ...values(p, "env").flatMap((e) => ["-e", e]),
      ...(value(p, "workdir") ? ["-w", value(p, "workdir")!] : []),
      m.container,
      ...p.trailing,
    ];
    if (!tty || versionAtLeast(version, "0.8.1")) return runInteractive(argv);
    return new Promise((resolve, reject) => {
      const child = start(argv, { stdio: ["inherit", "pipe", "inherit"] });
      child.stdout!.pipe(process.stdout);
      child.on("error", reject);
      child.on("close", (code, sig) => resolve(code ?? (sig ? 129 : 1)));
    });
  },

  "machine cp": async (p) => {
    const [src, dst] = p.positionals as [string, string];
    const remote = src.includes(":") ? src : dst.includes(":") ? dst : null;
    if (!remote) throw new FakeError("one of SRC or DST must use machine:path syntax (e.g., myvm:/workspace/file)");
    const [name, path] = remote.split(/:(.*)/s, 2) as [string, string];
    const m = await requireMachine(name);
    if (m.state !== "running" || !m.container) throw new FakeError(`machine '${name}' is not running`);
    const target = `${m.container}:${path}`;
    await run(["docker", "cp", remote === src ? target : src, remote === dst ? target : dst]);
    return 0;
  },

  "machine ls": async (p) => {
    const machines = await listMachines();
    if (!has(p, "json")) {
      out(machines.length ? machines.map((m) => `${m.name}\t${m.state}`).join("\n") + "\n" : "No machines found\n");
      return 0;
    }
    // Key order differs from the record on purpose: consumers must not depend on it.
    const rows = machines.map((m) => ({
      state: m.state === "created" ? "stopped" : m.state,
      created_at: m.created_at,
      name: m.name,
      cpus: m.cpus,
      pid: m.pid,
      network: m.network,
      memory_mib: m.memory_mib,
      image: m.image,
      allowed_cidrs: m.allowed_cidrs,
    }));
    out(JSON.stringify(rows, null, 2) + "\n");
    return 0;
  },

  "pack create": async (p) => {
    const ref = value(p, "image")!;
    const output = value(p, "output")!;
    const host = ref.split("/")[0]!;
    // Never pull from anywhere but this machine (test traffic stays on loopback).
    if (!/^(localhost|127\.\d+\.\d+\.\d+)(:\d+)?$/.test(host)) throw new FakeError(`the stand-in only pulls from a registry on loopback, not ${host}`);
    await run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-oci-accept-uncompressed-layers", `docker://${ref}`, `oci-archive:${output}.smolmachine`], {
      timeoutMs: 10 * 60_000,
    });
    // smolvm writes a launcher at OUTPUT next to the artifact at OUTPUT.smolmachine.
    writeFileSync(output, `#!/bin/sh\necho "packed by the smolvm stand-in from ${ref}" >&2\nexit 1\n`);
    chmodSync(output, 0o755);
    out(`Packed ${ref} -> ${output}.smolmachine\n`);
    return 0;
  },
};

async function main(argv: string[]): Promise<number> {
  setLogLevel("warn"); // lib/proc's debug lines would mix into the guest's stderr
  const log = process.env.FAKE_SMOLVM_LOG;
  const version = process.env.FAKE_SMOLVM_VERSION ?? "";
  if (!log || !SUPPORTED.includes(version)) {
    process.stderr.write(`smolvm stand-in: set FAKE_SMOLVM_LOG and FAKE_SMOLVM_VERSION (one of ${SUPPORTED.join(", ")})\n`);
    return 97;
  }
  appendFileSync(log, JSON.stringify({ argv, version, at: new Date().toISOString(), stdinTty: Boolean(process.stdin.isTTY) }) + "\n");
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
    out(`smolvm ${version}\n`);
    return 0;
  }
  const cmd = grammar(version).find((c) => c.path === argv.slice(0, 2).join(" "));
  // A CLI that stopped answering (a wedged VM, a hung server), for tests of time limits.
  if (cmd && (process.env.FAKE_SMOLVM_HANG ?? "").split(",").includes(cmd.path)) {
    await new Promise(() => setInterval(() => {}, 60_000));
  }
  if (!cmd) {
    process.stderr.write(`error: unrecognized subcommand '${argv.slice(0, 2).join(" ")}'\n\nUsage: smolvm <COMMAND>\n\nFor more information, try '--help'.\n`);
    return 2;
  }
  try {
    const parsed = parse(cmd, argv.slice(cmd.path.split(" ").length));
    return await handlers[cmd.path]!(parsed, version);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${e.message}\n\n${e.usage}\n\nFor more information, try '--help'.\n`);
      return 2;
    }
    process.stderr.write(`Error: ${(e as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
