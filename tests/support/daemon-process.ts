// Test helper: run a sidecar daemon's main.ts as a real node process (through tsx, so
// the test works the same under node and deno), wait for its "listening on HOST:PORT"
// line, and stop it afterwards. Used by the egress and git-gate suites.
import type { ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { start } from "../../lib/proc.ts";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const TSX_LOADER = `${REPO_ROOT}node_modules/tsx/dist/loader.mjs`;

export interface DaemonProcess {
  child: ChildProcess;
  pid: number;
  /** The address from the daemon's "listening on" line. */
  host: string;
  port: number;
  /** Everything the daemon wrote to stderr so far. */
  stderr(): string;
  /** Send a signal (deno's ChildProcess.kill delivers only the first one, so by pid). */
  signal(sig: NodeJS.Signals): void;
  /** Resolve when stderr (from now on) matches `re`. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** `node --import tsx <script> ...args` with `env` added to this process's environment. */
export function tsNodeArgv(script: string, args: string[]): string[] {
  return ["node", "--import", TSX_LOADER, script, ...args];
}

export function startDaemon(script: string, args: string[], env: Record<string, string> = {}, timeoutMs = 15_000): Promise<DaemonProcess> {
  const child = start(tsNodeArgv(script, args), { env, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  const listeners = new Set<() => void>();
  child.stdout!.on("data", () => {});
  child.stderr!.on("data", (b: Buffer) => {
    err += b.toString("utf8");
    for (const l of [...listeners]) l();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const proc: Omit<DaemonProcess, "host" | "port"> = {
    child,
    pid: child.pid!,
    stderr: () => err,
    signal: (sig) => signalPid(child, sig),
    waitForLog(re, ms = 10_000) {
      const from = err.length;
      return new Promise((resolve, reject) => {
        const check = () => {
          if (re.test(err.slice(from))) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`daemon stderr never matched ${re}; stderr:\n${err}`));
        }, ms);
        listeners.add(check);
        check();
      });
    },
    async stop() {
      signalPid(child, "SIGTERM");
      const timer = setTimeout(() => signalPid(child, "SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void proc.stop();
      reject(new Error(`daemon ${script} did not report "listening on" within ${timeoutMs}ms; stderr:\n${err}`));
    }, timeoutMs);
    const check = () => {
      const m = /listening on (\S+):(\d+)/.exec(err);
      if (!m) return;
      listeners.delete(check);
      clearTimeout(timer);
      resolve({ ...proc, host: m[1]!.replace(/^\[|\]$/g, ""), port: Number(m[2]) });
    };
    listeners.add(check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`daemon ${script} exited ${code} before listening; stderr:\n${err}`));
    });
  });
}

/** Signal a child unless it has exited (deno's ChildProcess.kill delivers only once). */
export function signalPid(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid!, sig);
  } catch {
    // already gone
  }
}

/** The NUL-separated environment of a running process, as the kernel holds it. */
export async function environOf(pid: number | "self"): Promise<string[]> {
  return (await readFile(`/proc/${pid}/environ`, "latin1")).split("\0").filter(Boolean);
}
