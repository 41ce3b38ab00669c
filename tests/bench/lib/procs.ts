// The processes one benchmark run starts, kept as a group: each is started through
// lib/proc.ts, awaited (its "listening on HOST:PORT" line, or an open port for programs
// that print none), measured from /proc, and stopped by its own pid at the end, also
// when the run throws or is interrupted. A process "exit" hook SIGKILLs whatever is
// left if the bench itself dies first.
import type { ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import net from "node:net";
import process from "node:process";
import { BbError } from "../../../lib/errors.ts";
import { start } from "../../../lib/proc.ts";

export interface Proc {
  name: string;
  pid: number;
  child: ChildProcess;
  /** The tail of what it wrote (stdout and stderr), for error messages. */
  output(): string;
}

export interface Memory {
  /** Resident set now (VmRSS), KiB. */
  rssKiB: number;
  /** Peak resident set so far (VmHWM), KiB. */
  peakKiB: number;
}

const KEEP = 8192;
const STOP_GRACE_MS = 3000;

const alive = (p: Proc) => p.pid >= 0 && p.child.exitCode === null && p.child.signalCode === null;

function signal(p: Proc, sig: NodeJS.Signals) {
  if (!alive(p)) return;
  try {
    process.kill(p.pid, sig);
  } catch {
    // already gone
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ProcGroup {
  private readonly procs: Proc[] = [];
  private stopping = false;
  private readonly onExit = () => this.procs.forEach((p) => signal(p, "SIGKILL"));

  constructor(private readonly abort?: AbortSignal) {
    process.on("exit", this.onExit);
  }

  spawn(name: string, argv: string[], env: Record<string, string> = {}): Proc {
    this.abort?.throwIfAborted();
    if (this.stopping) throw new BbError("INTERNAL", `not starting ${name}: the run is stopping`);
    const child = start(argv, { env, stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    const keep = (b: Buffer) => {
      text = (text + b.toString("utf8")).slice(-KEEP);
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    child.on("error", (e) => keep(Buffer.from(`\n${e.message}\n`)));
    const p: Proc = { name, pid: child.pid ?? -1, child, output: () => text };
    this.procs.push(p);
    return p;
  }

  /** Wait until `test` holds (polled), failing early when the process exits or the run is interrupted. */
  private async until(p: Proc, what: string, timeoutMs: number, test: () => Promise<boolean> | boolean): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.abort?.throwIfAborted();
      if (await test()) return;
      if (!alive(p)) throw new BbError("SUBPROCESS", `${p.name} exited before ${what}:\n${p.output().trimEnd()}`);
      if (Date.now() > deadline) throw new BbError("TIMEOUT", `${p.name} did not ${what} within ${timeoutMs / 1000}s:\n${p.output().trimEnd()}`);
      await sleep(50);
    }
  }

  /** The port from the process's "listening on HOST:PORT" line. */
  async listening(p: Proc, timeoutMs = 20_000): Promise<number> {
    let port = 0;
    await this.until(p, 'print "listening on HOST:PORT"', timeoutMs, () => {
      const m = /listening on \S+:(\d+)/.exec(p.output());
      port = Number(m?.[1] ?? 0);
      return port > 0;
    });
    return port;
  }

  /** Resolves once 127.0.0.1:port accepts a connection. */
  async accepting(p: Proc, port: number, timeoutMs = 20_000): Promise<void> {
    await this.until(p, `accept connections on 127.0.0.1:${port}`, timeoutMs, () => canConnect(port));
  }

  /** Every process gets SIGTERM, then SIGKILL after a grace period. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    const exits = this.procs.filter(alive).map((p) => new Promise<void>((r) => p.child.once("exit", () => r())));
    this.procs.forEach((p) => signal(p, "SIGTERM"));
    const timer = setTimeout(() => this.procs.forEach((p) => signal(p, "SIGKILL")), STOP_GRACE_MS);
    await Promise.all(exits);
    clearTimeout(timer);
    process.off("exit", this.onExit);
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export { freePort } from "../../support/ports.ts";

/** VmRSS and VmHWM of a process; undefined where /proc is not available. */
export async function memoryOf(pid: number): Promise<Memory | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? Number.NaN);
  return { rssKiB: kib("VmRSS"), peakKiB: kib("VmHWM") };
}

/** Clock ticks per second of /proc/<pid>/stat times; 100 on every Linux the bench runs on. */
const TICKS_PER_S = 100;

/** CPU time (user + system, ms) a process has used so far; undefined where /proc is not available. */
export async function cpuMsOf(pid: number): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // Fields after the parenthesised command name (which may hold spaces): utime is the 14th
  // field of the line, stime the 15th.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / TICKS_PER_S;
}
