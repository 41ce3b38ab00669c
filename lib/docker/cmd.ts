// The one way this driver calls the docker CLI: argv arrays through lib/proc.ts, failures
// thrown as BbError("DOCKER") whose message starts with what the caller was doing.
import process from "node:process";
import { BbError, isBbError } from "../errors.ts";
import { redactCredentials, showArgv, run, type RunOptions, type RunResult } from "../proc.ts";

type DockerOptions = Omit<RunOptions, "errorCode">;

export function docker(args: string[], opts: DockerOptions = {}): Promise<RunResult> {
  return run(["docker", ...args], { ...opts, errorCode: "DOCKER" });
}

/** Seconds a bounded call may take unless BB_DOCKER_TIMEOUT says otherwise. */
const BOUNDED_CALL_SECONDS = 60;

/** The limit for boundedDocker calls, from BB_DOCKER_TIMEOUT (seconds). */
export function boundedCallMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.BB_DOCKER_TIMEOUT;
  if (raw === undefined || raw === "") return BOUNDED_CALL_SECONDS * 1000;
  const seconds = Number(raw);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(raw) || !(seconds > 0)) {
    throw new BbError("USAGE", `BB_DOCKER_TIMEOUT=${raw}: expected a number of seconds above 0 (how long a docker call that should answer at once, such as a listing, an inspect or a removal, may take; default ${BOUNDED_CALL_SECONDS})`);
  }
  return Math.round(seconds * 1000);
}

// The first bounded call the engine left unanswered, if any: later ones in this process
// fail at once instead of each waiting out the limit (a teardown's removals run in rounds,
// containers then networks, and would otherwise wait one limit per round).
// Its own limit is kept with it: a probe's limit includes its wait (waitMs).
let unanswered: { argv: string; timeoutMs: number } | null = null;

/**
 * A docker call that a working engine answers in well under a second (a listing, an
 * inspect, creating or starting a container or network, a removal), with a time limit:
 * the docker CLI itself waits forever on an engine that accepts the connection and never
 * answers, and no step may. Past the limit the CLI is killed and the error says the
 * engine did not answer. `waitMs`: how long the command itself takes on purpose (an exec
 * that waits in the container), added to the limit. `shown`: the call as messages quote
 * it, for one whose argv is too long to read (a script). `undoing`: the removal of what a
 * call the engine left unanswered may have made (`docker run` creates the container, then
 * hangs starting it): asked even then, as an engine stuck on one call may answer another,
 * at the cost of one more limit on an engine that answers nothing.
 */
export async function boundedDocker(args: string[], opts: Omit<DockerOptions, "timeoutMs"> & { waitMs?: number; shown?: string; undoing?: boolean } = {}): Promise<RunResult> {
  const { waitMs = 0, shown, undoing = false, ...rest } = opts;
  const timeoutMs = boundedCallMs() + waitMs;
  const argv = ["docker", ...args];
  const quoted = shown ?? showArgv(argv);
  const prefix = opts.what ? opts.what + ": " : "";
  if (unanswered !== null && !undoing) {
    throw new BbError("TIMEOUT", `${prefix}not asked: the Docker engine did not answer \`${unanswered.argv}\` within ${unanswered.timeoutMs / 1000} s. Is it hung? Restart it and try again.`, {
      details: { argv, timeoutMs },
    });
  }
  try {
    return await docker(args, { ...rest, timeoutMs });
  } catch (e) {
    if (!isBbError(e) || e.code !== "TIMEOUT") throw e;
    unanswered ??= { argv: quoted, timeoutMs };
    throw new BbError(
      "TIMEOUT",
      `${prefix}the Docker engine did not answer \`${quoted}\` within ${timeoutMs / 1000} s. ` +
        `Is it hung? Restart it and try again (BB_DOCKER_TIMEOUT=SECONDS allows a slow engine longer).`,
      { cause: e, details: { argv, timeoutMs } },
    );
  }
}

/** BB_DOCKER_TIMEOUT, for the --help of every tool that talks to the Docker engine. */
export const DOCKER_ENVIRONMENT_HELP =
  "\nEnvironment:\n  BB_DOCKER_TIMEOUT  seconds a docker call that should answer at once (a listing, an\n                     inspect, a signal, a log read, creating, starting or removing a\n                     container or network) may take before the engine counts as not\n                     answering (default 60)\n";

/** True when stderr says the object does not exist (removal of a missing thing is not an error). */
export function isNoSuch(stderr: string): boolean {
  return /no such (container|network|object|image|volume)|not found/i.test(stderr);
}

/** The error for a result the caller let through with `expect` but cannot accept after all. */
export function failure(r: RunResult, what: string): BbError {
  // As run() says it: stderr's last lines, else stdout's (a command that says why there).
  const last = (text: string, lines: number) => redactCredentials(text.trim().split("\n").slice(-lines).join("\n"));
  const why = last(r.stderr, 8) || last(r.stdout, 8) || "(no output)";
  return new BbError("DOCKER", `${what}: ${showArgv(r.argv)} exited ${r.code}: ${why}`, {
    details: { argv: r.argv, exitCode: r.code, stderr: last(r.stderr, 20) },
  });
}
