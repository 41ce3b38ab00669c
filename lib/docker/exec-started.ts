// Has the engine started a `docker exec`? The docker CLI cannot say: it waits, silent, until
// the engine starts the exec, and forever on an engine that answers every other call but
// never that one. The engine's events can: each exec it starts is an exec_start event
// naming the container and the command line.
import { boundedDocker } from "./cmd.ts";

// The engine's clock is not ours (Docker Desktop runs it in a VM): looking further back
// only finds an earlier run of the same command, which counts as started (as every exec
// counted before this check existed); looking a second ahead makes the call wait that
// second, alongside the command, never in its way.
const BACK_MS = 10_000;
const AHEAD_MS = 1000;

const seconds = (ms: number) => (ms / 1000).toFixed(3);

/**
 * Whether the engine has started `cmd` (the command line inside the container, as docker
 * exec was given it) in `container` since `opts.since` (ms since the epoch), by its events.
 * Bounded as every call that should answer at once.
 */
export async function execStarted(container: string, cmd: string[], opts: { since: number; what: string; signal?: AbortSignal }): Promise<boolean> {
  const r = await boundedDocker(
    ["events", "--since", seconds(opts.since - BACK_MS), "--until", seconds(Date.now() + AHEAD_MS), "--filter", `container=${container}`, "--filter", "event=exec_start", "--format", "{{json .Action}}"],
    { what: opts.what, signal: opts.signal, waitMs: AHEAD_MS },
  );
  // docker writes the action as "exec_start: " + the command's words joined by spaces.
  const wanted = `exec_start: ${cmd.join(" ")}`.trimEnd();
  return r.stdout.split("\n").some((line) => line.trim() !== "" && String(JSON.parse(line)).trimEnd() === wanted);
}
