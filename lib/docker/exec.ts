// Running a command inside a running container: the one builder of `docker exec` argv (the
// agent's exec and attach in lib/vm/docker.ts build on it), and a captured run with its exit
// code for checks.
import type { RunResult } from "../proc.ts";
import { docker } from "./cmd.ts";
import { envArgs } from "./env.ts";

export interface ExecOptions {
  user?: string;
  workdir?: string;
  /** Passed by name: values stay out of argv (see env.ts). */
  env?: Record<string, string>;
}

/** argv after `docker` for `docker exec` (flags such as --interactive and --tty first), and
 * the values the docker CLI must carry in its environment (see env.ts). */
export function execArgs(container: string, cmd: string[], opts: ExecOptions, flags: string[] = []) {
  const env = envArgs(opts.env);
  const args = ["exec", ...flags, ...env.args];
  if (opts.user) args.push("--user", opts.user);
  if (opts.workdir) args.push("--workdir", opts.workdir);
  args.push(container, ...cmd);
  return { args, childEnv: env.childEnv };
}

export interface CapturedExecOptions extends ExecOptions {
  /** Written to the command's stdin. */
  input?: string | Uint8Array;
  /** Exit codes that are not failures (default [0]); pass e.g. [0, 1] to branch on a check. */
  expect?: readonly number[];
  timeoutMs?: number;
  what?: string;
}

/** Run a command to completion and capture its output and exit code. */
export function execIn(container: string, cmd: string[], opts: CapturedExecOptions = {}): Promise<RunResult> {
  const { args, childEnv } = execArgs(container, cmd, opts, opts.input === undefined ? [] : ["--interactive"]);
  return docker(args, {
    env: childEnv,
    input: opts.input,
    expect: opts.expect,
    timeoutMs: opts.timeoutMs,
    what: opts.what ?? `Command ${cmd[0]} failed in container ${container}`,
  });
}
