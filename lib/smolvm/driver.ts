// The smolvm driver: one method per subcommand the smolmachines flow needs, speaking the
// CLI dialect of the installed release (detected once with `smolvm --version`). Every call
// goes through lib/proc.ts; a non-zero exit throws BbError SMOLVM carrying argv and stderr,
// except `exec`, whose exit code is the guest command's and is returned.
import { existsSync } from "node:fs";
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod/v3";
import { BbError, isBbError } from "../errors.ts";
import { log } from "../log.ts";
import { run, type RunResult, ANY_EXIT } from "../proc.ts";
import * as A from "./argv.ts";
import { readMachineRecord, sameList, stateDbPath, writeAllowlist } from "./state-db.ts";
import { capabilities, parseVersion, type SmolvmCapabilities, type SmolvmVersion } from "./version.ts";

export type { CreateSpec, ExecSpec } from "./argv.ts";

/**
 * Pause after `machine start`: an exec sent right after start races libkrun's bringup
 * (the guest child is SIGKILLed or reads a half-written config.json).
 */
const DEFAULT_SETTLE_MS = 1500;

interface SmolvmOptions {
  /** The smolvm executable (default "smolvm" on PATH). */
  bin?: string;
  /** Extra environment for every smolvm (and sqlite3) subprocess. */
  env?: Record<string, string | undefined>;
  settleMs?: number;
  /** The sqlite3 CLI used for the allowlist patch (default "sqlite3"). */
  sqlite3?: string;
  /** smolvm's state DB; default from the platform and HOME (see state-db.ts). */
  stateDb?: string;
  /** The time limit for stop, delete, ls and status (default CONTROL_CALL_MS). */
  controlCallMs?: number;
  /** The time limit for create and start (default BOOT_CALL_MS). */
  bootCallMs?: number;
}

/**
 * How long the calls a teardown and a listing make (stop, delete, ls, status) may take:
 * a stop waits for the guest to shut down, but a CLI that has not answered in two minutes
 * is hung, and bb-cleanup must not wait on it forever. (start, create and pack are the
 * start flow's, which Ctrl-C stops.)
 */
const CONTROL_CALL_MS = 120_000;

/**
 * How long create and start may take. A first start may unpack a large artifact, but a
 * machine that has not come up in five minutes is hung, and a start flow with no terminal
 * to Ctrl-C (CI, `just run` under a script) would otherwise wait on it for ever.
 */
const BOOT_CALL_MS = 300_000;

export interface ExecOptions extends A.ExecSpec {
  /** Text for the guest command's stdin (implies -i). */
  input?: string;
  timeoutMs?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

const Machine = z.object({
  name: z.string(),
  state: z.string(),
  pid: z.number().nullable().optional(),
  network: z.boolean().optional(),
  image: z.string().nullable().optional(),
  created_at: z.union([z.string(), z.number()]).nullable().optional(),
}).passthrough();

export interface MachineInfo {
  name: string;
  /** "running", "stopped", "created", ... as smolvm reports it. */
  state: string;
  pid: number | null;
  network: boolean | null;
  image: string | null;
  createdAt: string | null;
  /** The whole object smolvm printed, for fields this type does not name. */
  raw: Record<string, unknown>;
}

export interface MachineStatus {
  name: string;
  state: string;
  /** smolvm's text, for people. */
  text: string;
}

export interface Smolvm {
  readonly bin: string;
  readonly version: SmolvmVersion;
  readonly caps: SmolvmCapabilities;
  /** Create a machine; on releases that drop the allowlist, write it into the state DB. */
  create(spec: A.CreateSpec): Promise<{ allowlistPatched: boolean }>;
  /** Start, then wait the settle time so the first exec does not race libkrun. */
  start(name: string): Promise<void>;
  stop(name: string): Promise<void>;
  delete(name: string): Promise<void>;
  /** Run a command in the guest; resolves with its exit code (never throws on non-zero). */
  exec(opts: ExecOptions): Promise<ExecResult>;
  /** The argv of an exec, for interactive use through lib/proc.ts runInteractive (and bb-pty-resize). */
  execArgv(spec: A.ExecSpec): string[];
  cpIn(name: string, hostPath: string, guestPath: string): Promise<void>;
  cpOut(name: string, guestPath: string, hostPath: string): Promise<void>;
  ls(): Promise<MachineInfo[]>;
  status(name: string): Promise<MachineStatus>;
  /**
   * Pack an image pulled from an OCI registry. smolvm writes a launcher at `output` and the
   * artifact at `output.smolmachine`; resolves with the artifact's path.
   */
  packCreate(opts: { image: string; output: string }): Promise<string>;
}


/** Ask the smolvm binary for its version (one `smolvm --version`). */
export async function detectVersion(opts: Pick<SmolvmOptions, "bin" | "env"> = {}): Promise<SmolvmVersion> {
  const bin = opts.bin ?? "smolvm";
  const r = await run(A.versionArgv(bin), { env: opts.env, errorCode: "SMOLVM", what: "Cannot ask smolvm for its version", timeoutMs: 30_000 });
  return parseVersion(r.stdout || r.stderr);
}

/** Detect the installed smolvm's version and return a driver for it. */
export async function openSmolvm(opts: SmolvmOptions = {}): Promise<Smolvm> {
  const version = await detectVersion(opts);
  log.debug(`smolvm ${version.text} at ${opts.bin ?? "smolvm"}`);
  return smolvmFor(version, opts);
}

/** A driver for a known version (no detection). */
export function smolvmFor(version: SmolvmVersion, opts: SmolvmOptions = {}): Smolvm {
  const bin = opts.bin ?? "smolvm";
  const caps = capabilities(version);
  const settleMs = opts.settleMs ?? DEFAULT_SETTLE_MS;
  const call = (argv: string[], what: string, extra: { timeoutMs?: number } = {}): Promise<RunResult> =>
    run(argv, { env: opts.env, errorCode: "SMOLVM", what, ...extra });
  const control = { timeoutMs: opts.controlCallMs ?? CONTROL_CALL_MS };
  const boot = { timeoutMs: opts.bootCallMs ?? BOOT_CALL_MS };

  /**
   * A release that keeps `--allow-cidr` itself is taken at its word only after the machine
   * it made is read back: a release that drops it again (as every one before 1.8.0 did
   * with `--from`) would start a VM that reaches more than the bundle. `machine ls` is
   * asked first; where it prints no allowed_cidrs, the state DB. Where neither answers
   * (a layout this driver does not know), it says so and goes on.
   */
  const confirmAllowlist = async (name: string, cidrs: string[], dbPath: string): Promise<void> => {
    const listed = (await smolvm.ls()).find((m) => m.name === name);
    let seen: { from: string; cidrs: unknown } | null = listed && "allowed_cidrs" in listed.raw ? { from: "smolvm machine ls", cidrs: listed.raw.allowed_cidrs } : null;
    if (!seen) {
      seen = await readMachineRecord({ dbPath, name, sqlite3: opts.sqlite3 }).then(
        (doc) => ("allowed_cidrs" in doc ? { from: `smolvm's state DB ${dbPath}`, cidrs: doc.allowed_cidrs } : null),
        (e: Error) => (log.debug(`reading ${name} back from ${dbPath}: ${e.message}`), null),
      );
    }
    if (!seen) {
      log.warn(`smolvm ${version.text}: cannot read back machine ${name}'s allowlist (neither \`smolvm machine ls --json\` nor ${dbPath} shows allowed_cidrs); trusting --allow-cidr ${cidrs.join(" ")}`);
      return;
    }
    if (!sameList(seen.cidrs, cidrs)) {
      throw new BbError("SMOLVM", `smolvm ${version.text} made machine ${name} with allowed_cidrs=${JSON.stringify(seen.cidrs)} (read back from ${seen.from}), not ${JSON.stringify(cidrs)} as asked: it was deleted, never started, since without its allowlist the VM could reach more than the bundle`, {
        details: { name, asked: cidrs, seen: seen.cidrs, from: seen.from },
      });
    }
    log.debug(`smolvm ${version.text}: ${name} has allowed_cidrs=${JSON.stringify(cidrs)} (${seen.from})`);
  };

  const smolvm: Smolvm = {
    bin,
    version,
    caps,

    async create(spec) {
      await call(A.createArgv(bin, caps, spec), `Cannot create smolvm machine ${spec.name}`, boot).catch(async (e: unknown) => {
        // Killed at its time limit, it may have made the machine already (nothing else had
        // that name, or create would have failed at once): take it away.
        if (isBbError(e) && e.code === "TIMEOUT") await smolvm.delete(spec.name).catch(() => {});
        throw e;
      });
      if (spec.allowCidrs.length === 0) return { allowlistPatched: false };
      const dbPath = opts.stateDb ?? stateDbPath({ env: { ...process.env, ...opts.env } });
      try {
        if (caps.allowlistNeedsDbPatch) {
          await writeAllowlist({ dbPath, name: spec.name, cidrs: spec.allowCidrs, sqlite3: opts.sqlite3 });
          log.debug(`smolvm ${version.text}: wrote allowed_cidrs=${JSON.stringify(spec.allowCidrs)} for ${spec.name} into ${dbPath}`);
          return { allowlistPatched: true };
        }
        await confirmAllowlist(spec.name, spec.allowCidrs, dbPath);
        return { allowlistPatched: false };
      } catch (e) {
        // A machine without its allowlist must never be started: take it away again.
        await smolvm.delete(spec.name).catch((de) => log.warn(`could not delete ${spec.name} after its allowlist failed: ${(de as Error).message}`));
        throw e;
      }
    },

    async start(name) {
      await call(A.startArgv(bin, caps, name), `Cannot start smolvm machine ${name}`, boot);
      if (settleMs > 0) await sleep(settleMs);
    },

    async stop(name) {
      await call(A.stopArgv(bin, caps, name), `Cannot stop smolvm machine ${name}`, control);
    },

    async delete(name) {
      await call(A.deleteArgv(bin, caps, name), `Cannot delete smolvm machine ${name}`, control);
    },

    async exec(o) {
      const spec = { ...o, interactive: o.interactive || o.input !== undefined };
      const r = await run(A.execArgv(bin, caps, spec), {
        env: opts.env,
        input: o.input,
        expect: ANY_EXIT,
        timeoutMs: o.timeoutMs,
        errorCode: "SMOLVM",
        what: `Cannot exec in smolvm machine ${o.name}`,
      });
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    },

    execArgv: (spec) => A.execArgv(bin, caps, spec),

    async cpIn(name, hostPath, guestPath) {
      await call(A.cpInArgv(bin, caps, name, hostPath, guestPath), `Cannot copy ${hostPath} into smolvm machine ${name}`);
    },

    async cpOut(name, guestPath, hostPath) {
      await call(A.cpOutArgv(bin, caps, name, guestPath, hostPath), `Cannot copy ${guestPath} out of smolvm machine ${name}`);
    },

    async ls() {
      const r = await call(A.lsArgv(bin), "Cannot list smolvm machines", control);
      return parseLs(r.stdout, r.argv);
    },

    async status(name) {
      const r = await call(A.statusArgv(bin, caps, name), `Cannot read the status of smolvm machine ${name}`, control);
      return parseStatus(name, r.stdout);
    },

    async packCreate({ image, output }) {
      const base = output.endsWith(".smolmachine") ? output.slice(0, -".smolmachine".length) : output;
      await call(A.packCreateArgv(bin, image, base), `Cannot pack ${image} into a .smolmachine`, { timeoutMs: 30 * 60_000 });
      const artifact = `${base}.smolmachine`;
      if (!existsSync(artifact)) throw new BbError("SMOLVM", `smolvm pack create for ${image} succeeded but wrote no ${artifact}`);
      return artifact;
    },
  };
  return smolvm;
}

/** Parse `smolvm machine ls --json`: an array of objects whose keys come in any order. */
export function parseLs(stdout: string, argv: string[] = ["smolvm", "machine", "ls", "--json"]): MachineInfo[] {
  let data: unknown;
  try {
    data = JSON.parse(stdout.trim() || "[]");
  } catch (e) {
    throw new BbError("SMOLVM", `Cannot parse the output of ${argv.join(" ")} as JSON: ${(e as Error).message}`, { cause: e, details: { argv, stdout: stdout.slice(0, 500) } });
  }
  const parsed = z.array(Machine).safeParse(data);
  if (!parsed.success) {
    throw new BbError("SMOLVM", `Unexpected output of ${argv.join(" ")}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`, {
      details: { argv, stdout: stdout.slice(0, 500) },
    });
  }
  return parsed.data.map((m) => ({
    name: m.name,
    state: m.state,
    pid: m.pid ?? null,
    network: m.network ?? null,
    image: m.image ?? null,
    createdAt: m.created_at === undefined || m.created_at === null ? null : String(m.created_at),
    raw: m as Record<string, unknown>,
  }));
}

/** Read the state word out of `machine status` text ("Machine 'x': running (PID 42)"). */
export function parseStatus(name: string, stdout: string): MachineStatus {
  const text = stdout.trim();
  // Read around the machine's own name, which may hold a state word itself: a slug starts
  // with its agent's name (bb-error-triage-k3x9, bb-running-coach-ab12).
  const m = /\b(running|stopped|created|starting|stopping|unreachable|error)\b/i.exec(text.split(name).join(" "));
  return { name, state: m ? m[1]!.toLowerCase() : "unknown", text };
}
