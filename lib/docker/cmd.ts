// The one way this driver calls the docker CLI: argv arrays through lib/proc.ts, failures
// thrown as BbError("DOCKER") whose message starts with what the caller was doing.
import { BbError } from "../errors.ts";
import { formatArgv, run, type RunOptions, type RunResult } from "../proc.ts";

export type DockerOptions = Omit<RunOptions, "errorCode">;

export function docker(args: string[], opts: DockerOptions = {}): Promise<RunResult> {
  return run(["docker", ...args], { ...opts, errorCode: "DOCKER" });
}

/** True when stderr says the object does not exist (removal of a missing thing is not an error). */
export function isNoSuch(stderr: string): boolean {
  return /no such (container|network|object|image)|not found/i.test(stderr);
}

/** The error for a result the caller let through with `expect` but cannot accept after all. */
export function failure(r: RunResult, what: string): BbError {
  const why = r.stderr.trim().split("\n").slice(-8).join("\n") || "(no output)";
  return new BbError("DOCKER", `${what}: ${formatArgv(r.argv)} exited ${r.code}: ${why}`, {
    details: { argv: r.argv, exitCode: r.code, stderr: r.stderr.trim().split("\n").slice(-20).join("\n") },
  });
}
