// Has the engine started a `docker exec`? The docker CLI cannot say: it waits, silent, until
// the engine starts the exec, and forever on an engine that answers every other call but
// never that one. The engine's events can: each exec it starts is an exec_start event
// naming the container and the command line. That line must be this exec's alone (bb-vm
// marks it: marked() in exec.ts), or an earlier run of the same command, which the window
// below may take in, counts as this one started.
import { BbError } from "../errors.ts";
import { boundedDocker } from "./cmd.ts";

// Event times are the engine's clock, which is not ours (Docker Desktop runs the engine in
// a VM whose clock drifts, a remote DOCKER_HOST has its own): engineClockOffset() measures how far
// it is from ours, and every window below is put on the engine's clock with it. Looking
// further back only finds other commands, as the command line is this exec's alone;
// looking a second ahead makes the call wait that second, alongside the command, never in
// its way.
const BACK_MS = 10_000;
const AHEAD_MS = 1000;

const seconds = (ms: number) => (ms / 1000).toFixed(3);

/**
 * How far the engine's clock is ahead of ours (ms, negative when behind), from its own
 * time in `docker info`, taken at the middle of the call. Bounded as every call that should
 * answer at once, so it also tells an engine that answers from one that does not.
 */
export async function engineClockOffset(o: { what: string; signal?: AbortSignal }, now: () => number = Date.now): Promise<number> {
  const before = now();
  const r = await boundedDocker(["info", "--format", "{{json .SystemTime}}"], o);
  const after = now();
  const engine = Date.parse(JSON.parse(r.stdout.trim() || '""') as string);
  if (Number.isNaN(engine)) throw new BbError("SUBPROCESS", `${o.what}: docker info gave no system time (${r.stdout.trim() || "nothing"})`);
  return engine - (before + after) / 2;
}

/**
 * Whether the engine has started `cmd` (the command line inside the container, as docker
 * exec was given it) in `container` since `opts.since` (ms since the epoch, our clock), by
 * its events; `opts.offsetMs` is engineClockOffset's answer. Bounded as every call that
 * should answer at once.
 */
export async function execStarted(
  container: string,
  cmd: string[],
  opts: { since: number; offsetMs: number; what: string; signal?: AbortSignal; now?: () => number },
): Promise<boolean> {
  const since = opts.since + opts.offsetMs - BACK_MS;
  const until = (opts.now ?? Date.now)() + opts.offsetMs + AHEAD_MS;
  const r = await boundedDocker(
    ["events", "--since", seconds(since), "--until", seconds(until), "--filter", `container=${container}`, "--filter", "event=exec_start", "--format", "{{json .Action}}"],
    { what: opts.what, signal: opts.signal, waitMs: AHEAD_MS },
  );
  // docker writes the action as "exec_start: " + the command's words joined by spaces.
  const wanted = `exec_start: ${cmd.join(" ")}`.trimEnd();
  return r.stdout.split("\n").some((line) => line.trim() !== "" && String(JSON.parse(line)).trimEnd() === wanted);
}
