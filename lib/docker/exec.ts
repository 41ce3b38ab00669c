// Running a command inside a running container: the one builder of `docker exec` argv (the
// agent's exec and attach in lib/vm/docker.ts build on it), and a captured run with its exit
// code for checks.
import { ANY_EXIT, type RunResult } from "../proc.ts";
import { runtimeLineOff } from "./cli-errors.ts";
import { docker, failure } from "./cmd.ts";
import { envArgs } from "./env.ts";

interface ExecOptions {
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

interface CapturedExecOptions extends ExecOptions {
  /** Written to the command's stdin. */
  input?: string | Uint8Array;
  /** Exit codes that are not failures (default [0]); pass e.g. [0, 1] to branch on a check. */
  expect?: readonly number[];
  timeoutMs?: number;
  what?: string;
}

/** Run a command to completion and capture its output and exit code (the runtime's refusal
 * to start it on stderr: runtimeLineOff). */
export async function execIn(container: string, cmd: string[], opts: CapturedExecOptions = {}): Promise<RunResult> {
  const { args, childEnv } = execArgs(container, cmd, opts, opts.input === undefined ? [] : ["--interactive"]);
  const what = opts.what ?? `Command ${cmd[0]} failed in container ${container}`;
  const r = runtimeLineOff(await docker(args, { env: childEnv, input: opts.input, expect: ANY_EXIT, timeoutMs: opts.timeoutMs, what }));
  if (!(opts.expect ?? [0]).includes(r.code)) throw failure(r, what);
  return r;
}

/**
 * The variable that marks a `docker exec`'s processes, its own and every child's that keeps
 * its environment: docker cannot end an exec whose client died (its command runs on, a
 * session leader in the container that nothing will signal), so endMarked finds them by it.
 */
const EXEC_MARK = "BB_EXEC_MARK";

/** `cmd` with `mark` in its environment, set on its command line (through /usr/bin/env, by
 * path: no PATH lookup) rather than by `docker exec -e`: so the engine's exec_start event,
 * which names the command line, names this exec alone (execStarted). No secret. */
export const marked = (mark: string, cmd: string[]) => ["/usr/bin/env", `${EXEC_MARK}=${mark}`, ...cmd];

/** How long endMarked gives the processes to end on its first signal before it kills them. */
export const END_GRACE_MS = 5000;

// $1: NAME=value, the mark; $2: the signal first sent; $3: tenths of a second the signal
// has to end them before they are killed. A process that cleared its environment is not found.
const END_MARKED = `mark=$1
marked() {
  pids=
  for d in /proc/[0-9]*; do
    if { tr '\\0' '\\n' < "$d/environ" | grep -qxF -e "$mark"; } 2>/dev/null; then pids="$pids \${d#/proc/}"; fi
  done
  [ -n "$pids" ]
}
marked || exit 0
kill -s "$2" $pids 2>/dev/null
n=0
while [ $n -lt "$3" ] && marked; do sleep 0.1; n=$((n + 1)); done
if marked; then kill -s KILL $pids 2>/dev/null; fi
exit 0`;

/** The command that, run in the container as the marked exec's user (who may signal only
 * their own processes), ends that exec's processes with `signal`, then SIGKILL. */
export const endMarked = (mark: string, signal: "HUP" | "TERM"): string[] => ["sh", "-c", END_MARKED, "sh", `${EXEC_MARK}=${mark}`, signal, String(END_GRACE_MS / 100)];
