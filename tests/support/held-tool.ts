// A bb-* tool run by hand and held (stop-after.mjs) right after one of its calls, for a test
// to send it what a terminal would at exactly that point: a Ctrl-C, then let it go on.
import type { TestContext } from "node:test";
import { join } from "node:path";
import process from "node:process";
import { start } from "../../lib/proc.ts";
import { procState } from "./flow-child.ts";
import { REPO } from "./tools.ts";
import { until } from "./until.ts";

export const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** bin/`tool` `args` from source (stdin: `input`, else none), held after its first `call`
 * (mkdir, link, rename, or stdout) whose target path (or text) matches `path`. Resolves
 * once it is held; `interrupt()` then sends it SIGINT, lets it go on and resolves with how
 * it ended. `stdoutClosed`: its stdout's reader is gone from the start, as when the next
 * step in a pipe exited first. */
export async function heldTool(t: TestContext, tool: string, args: string[], o: { call: string; path: string; input?: string; env?: Record<string, string>; stdoutClosed?: boolean }) {
  const child = start([join(REPO, "bin", tool), ...args], {
    stdio: [o.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    env: {
      BB_FROM_SOURCE: "1",
      NO_COLOR: "1",
      ...o.env,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import=${join(REPO, "tests/support/stop-after.mjs")}`.trim(),
      BB_TEST_STOP_CALL: o.call,
      BB_TEST_STOP_PATH: o.path,
    },
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  if (o.stdoutClosed) child.stdout!.destroy();
  const ended = new Promise<Ended>((r) => child.once("close", (code, signal) => r({ code, signal, stdout, stderr })));
  t.after(() => {
    try {
      process.kill(child.pid!, "SIGKILL");
    } catch {
      // Ended.
    }
  });
  if (o.input !== undefined) child.stdin!.end(o.input);
  await until(`${tool} held after its ${o.call}`, () => procState(child.pid!) === "T", { timeoutMs: 120_000, why: () => stderr });
  return {
    interrupt: (): Promise<Ended> => {
      // By pid: Deno's child.kill() has the child's end reported as that signal.
      process.kill(child.pid!, "SIGINT");
      process.kill(child.pid!, "SIGCONT");
      return ended;
    },
  };
}
