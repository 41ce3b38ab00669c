// Test support: a real child process whose output lines the test can wait for, and that
// the test stops (and waits for) when it is done.
import type { ChildProcess } from "node:child_process";
import process from "node:process";
import { onOutputLines, start } from "../../proc.ts";
import { REPO_ROOT } from "./ts-argv.ts";

export interface Watched {
  child: ChildProcess;
  /** Every complete output line so far (stdout and stderr together). */
  lines: string[];
  /** The first line (past or future) matching `re`; rejects after `ms` with the output so far. */
  waitFor(re: RegExp, ms?: number, from?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or 128+signal) once the process is gone. */
  exited: Promise<number>;
  /** Send a signal to the process (by pid). */
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM (SIGKILL after `ms`), then the exit code. */
  stop(ms?: number): Promise<number>;
}

const SIGNUM: Record<string, number> = { SIGTERM: 15, SIGKILL: 9, SIGINT: 2 };

export function watch(argv: string[], env: Record<string, string | undefined> = {}, replaceEnv = false): Watched {
  const child = start(argv, { env, replaceEnv, cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  onOutputLines(child, (parts) => {
    lines.push(...parts);
    for (const w of waiters) w();
  });
  let done = false;
  const exited = new Promise<number>((resolve) => {
    child.on("close", (code, sig) => {
      done = true;
      for (const w of waiters) w();
      resolve(code ?? 128 + (SIGNUM[sig ?? ""] ?? 0));
    });
  });

  function waitFor(re: RegExp, ms = 10_000, from = 0): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        for (const line of lines.slice(from)) {
          const m = line.match(re);
          if (m) return finish(() => resolve(m));
        }
        if (done) finish(() => reject(new Error(`process exited before printing ${re}; output:\n${lines.join("\n")}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`no line matching ${re} within ${ms}ms; output:\n${lines.join("\n")}`))), ms);
      const finish = (f: () => void) => {
        clearTimeout(timer);
        waiters.delete(check);
        f();
      };
      waiters.add(check);
      check();
    });
  }

  // By pid, not child.kill(): under Deno a child signalled through child.kill() reports
  // that signal as its exit even when it exited 0 by itself, and a second kill() is a no-op.
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(child.pid!, sig);
    } catch {
      // already gone
    }
  };

  async function stop(ms = 10_000): Promise<number> {
    if (!done) {
      signal("SIGTERM");
      const timer = setTimeout(() => signal("SIGKILL"), ms);
      await exited;
      clearTimeout(timer);
    }
    return exited;
  }

  return { child, lines, waitFor, exited, signal, stop };
}
