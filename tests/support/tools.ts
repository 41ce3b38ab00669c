// Running the bb-* tools as real subprocesses from the checkout, the way a user does.
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { run, type RunResult, ANY_EXIT } from "../../lib/proc.ts";

export const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

export interface ToolRun extends RunResult {
  json(): unknown;
}

/** Run bin/<tool> from source (tsx), never throwing on a non-zero exit. */
export async function runTool(
  tool: string,
  args: string[],
  opts: { input?: string; env?: Record<string, string | undefined>; cwd?: string } = {},
): Promise<ToolRun> {
  const r = await run([join(REPO, "bin", tool), ...args], {
    expect: ANY_EXIT,
    input: opts.input,
    cwd: opts.cwd,
    env: { BB_FROM_SOURCE: "1", NO_COLOR: "1", ...opts.env },
    timeoutMs: 120_000,
  });
  return { ...r, json: () => JSON.parse(r.stdout) };
}

/** This process's PATH without the folders that hold `program`: a machine that has it installed
 * still runs a test of what happens without it. */
export const pathWithout = (program: string): string =>
  (process.env.PATH ?? "").split(":").filter((d) => d && !existsSync(join(d, program))).join(":");
