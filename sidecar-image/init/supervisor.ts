// The bundle's process supervisor: starts one child per listed daemon, prefixes its
// output, restarts it with exponential backoff when it dies, restarts or signals one
// daemon on request, and stops them all (SIGTERM, then SIGKILL after a deadline).
// main.ts maps the container's signals onto restart()/signal()/stop().
import type { ChildProcess } from "node:child_process";
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import { start } from "../../lib/proc.ts";
import { createLinePrefixer } from "./lines.ts";
import type { Service } from "./services.ts";

/** How long stop() waits for stopped daemons' output pipes to close. */
const DRAIN_MS = 1000;

interface Backoff {
  /** Delay before the first restart after a crash. */
  initialMs: number;
  /** The delay doubles per crash up to this. */
  maxMs: number;
  /** A daemon that ran this long before dying starts over at initialMs. */
  resetAfterMs: number;
}

interface SupervisorOptions {
  services: Service[];
  argv: (name: Service) => string[];
  env: (name: Service) => Record<string, string>;
  /** Where prefixed lines go: daemons' stdout and init's own messages, and daemons' stderr. */
  out: (text: string) => void;
  err: (text: string) => void;
  /** Backpressure: while full() (out and err are read slower than daemons write), stop
   * reading daemons' output until onDrain calls back, so it waits in their pipes (and the
   * daemons' own bounded logs, lib/log.ts) instead of piling up in init. */
  backlog?: { full(): boolean; onDrain(resume: () => void): void };
  backoff: Backoff;
  /** How long stop() and restart() wait after SIGTERM before SIGKILL. */
  stopTimeoutMs: number;
}

interface Supervisor {
  start(): void;
  /** Replace one daemon's process (SIGUSR1 -> firewall). False when it is not supervised. */
  restart(name: Service): boolean;
  /** Send a signal to one daemon (SIGHUP -> firewall, egress). False when it is not running. */
  signal(name: Service, sig: NodeJS.Signals): boolean;
  /** Stop every daemon; resolves once all are gone. */
  stop(): Promise<void>;
  /** Current PIDs by daemon (undefined while one waits to be restarted). */
  pids(): Partial<Record<Service, number>>;
}

interface Daemon {
  name: Service;
  child?: ChildProcess;
  /** Resolves when the child's output pipes have closed (its last line is out). */
  drained?: Promise<void>;
  startedAt: number;
  /** Delay before the next crash restart. */
  delay: number;
  restartTimer?: ReturnType<typeof setTimeout>;
  killTimer?: ReturnType<typeof setTimeout>;
  /** Set by restart(): the coming exit is wanted, start again at once. */
  replacing: boolean;
}

/**
 * Signal a child by pid: Deno's child.kill() turns into a no-op after its first call,
 * and a daemon may get SIGHUP several times before its SIGTERM.
 */
function send(child: ChildProcess, sig: NodeJS.Signals): boolean {
  if (child.pid === undefined) return false;
  try {
    process.kill(child.pid, sig);
    return true;
  } catch {
    return false; // already gone: its exit event is on the way
  }
}

export function createSupervisor(opts: SupervisorOptions): Supervisor {
  const daemons = new Map<Service, Daemon>(opts.services.map((name) => [name, { name, startedAt: 0, delay: opts.backoff.initialMs, replacing: false }]));
  let stopping: Promise<void> | undefined;
  let allGone: (() => void) | undefined;
  const say = (msg: string) => opts.out(`init | ${msg}\n`);

  function spawn(d: Daemon) {
    d.restartTimer = undefined;
    d.replacing = false;
    d.startedAt = Date.now();
    const child = start(opts.argv(d.name), { env: opts.env(d.name), replaceEnv: true, stdio: ["ignore", "pipe", "pipe"] });
    d.child = child;
    d.drained = new Promise((resolve) => child.once("close", () => resolve()));
    for (const [stream, write] of [[child.stdout!, opts.out], [child.stderr!, opts.err]] as const) {
      const lines = createLinePrefixer(d.name, write);
      stream.setEncoding("utf8");
      stream.on("data", (t: string) => {
        lines.push(t);
        if (!opts.backlog?.full()) return;
        stream.pause();
        opts.backlog.onDrain(() => stream.resume());
      });
      stream.on("end", () => lines.flush());
    }
    let gone = false;
    const onGone = (how: string) => {
      if (gone) return;
      gone = true;
      exited(d, child, how);
    };
    // "exit", not "close": a grandchild holding the pipes open must not delay a restart.
    child.on("exit", (code, sig) => onGone(sig ? `signal ${sig}` : `code ${code}`));
    child.on("error", (e) => {
      say(`cannot start ${d.name}: ${e.message}`);
      if (child.pid === undefined) onGone("spawn failure");
    });
    if (child.pid !== undefined) say(`started ${d.name} (pid ${child.pid})`);
  }

  function exited(d: Daemon, child: ChildProcess, how: string) {
    if (d.child !== child) return;
    d.child = undefined;
    clearTimeout(d.killTimer);
    const ranMs = Date.now() - d.startedAt;
    if (stopping) {
      say(`${d.name} stopped (${how})`);
      if ([...daemons.values()].every((x) => !x.child)) allGone?.();
      return;
    }
    if (d.replacing) {
      say(`${d.name} stopped for restart (${how})`);
      d.delay = opts.backoff.initialMs;
      spawn(d);
      return;
    }
    if (ranMs >= opts.backoff.resetAfterMs) d.delay = opts.backoff.initialMs;
    const delay = d.delay;
    d.delay = Math.min(delay * 2, opts.backoff.maxMs);
    say(`${d.name} exited (${how}) after ${(ranMs / 1000).toFixed(1)}s; restarting in ${delay}ms`);
    d.restartTimer = setTimeout(() => spawn(d), delay);
  }

  function terminate(d: Daemon) {
    const child = d.child!;
    send(child, "SIGTERM");
    clearTimeout(d.killTimer);
    d.killTimer = setTimeout(() => {
      if (d.child === child) {
        say(`${d.name} ignored SIGTERM for ${opts.stopTimeoutMs}ms; sending SIGKILL`);
        send(child, "SIGKILL");
      }
    }, opts.stopTimeoutMs);
  }

  return {
    start() {
      if (daemons.size === 0) say("no services listed (BB_SERVICES is empty): idling until stopped");
      for (const d of daemons.values()) spawn(d);
    },
    restart(name) {
      const d = daemons.get(name);
      if (!d || stopping) return false;
      if (d.child) {
        if (!d.replacing) {
          d.replacing = true;
          say(`restarting ${name}`);
          terminate(d);
        }
      } else {
        // Waiting out a crash backoff: whoever asked wants it back now.
        clearTimeout(d.restartTimer);
        d.delay = opts.backoff.initialMs;
        say(`restarting ${name}`);
        spawn(d);
      }
      return true;
    },
    signal(name, sig) {
      const child = daemons.get(name)?.child;
      return child ? send(child, sig) : false;
    },
    stop() {
      if (stopping) return stopping;
      const running = [...daemons.values()].filter((d) => d.child);
      for (const d of daemons.values()) clearTimeout(d.restartTimer);
      const exited = running.length === 0 ? Promise.resolve() : new Promise<void>((resolve) => (allGone = resolve));
      // Let their last lines out, but a grandchild holding a pipe open must not hold init.
      const drained = Promise.race([Promise.all(running.map((d) => d.drained)), sleep(DRAIN_MS)]);
      stopping = exited.then(() => drained).then(() => undefined);
      for (const d of running) terminate(d);
      return stopping;
    },
    pids() {
      const out: Partial<Record<Service, number>> = {};
      for (const d of daemons.values()) if (d.child?.pid !== undefined) out[d.name] = d.child.pid;
      return out;
    },
  };
}
