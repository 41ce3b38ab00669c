// The one module that starts subprocesses. Callers pass argv arrays (never a shell
// string built from values); every call is logged at debug level; a non-zero exit that
// the caller did not list in `expect` throws a BbError carrying argv, the exit code and
// the tail of stderr.
import { Buffer } from "node:buffer";
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { constants, createReadStream } from "node:fs";
import { access, stat } from "node:fs/promises";
import type { Readable } from "node:stream";
import { join } from "node:path";
import process from "node:process";
import { BbError, type ErrorCode } from "./errors.ts";
import { AGENT_KEY_PATTERN } from "./http/agent-key.ts";
import { log } from "./log.ts";

/** Every exit status, for `expect` when the caller reads the code itself. */
export const ANY_EXIT: readonly number[] = Array.from({ length: 256 }, (_, i) => i);

export interface RunOptions {
  /** Exit codes that are not failures (default [0]). */
  expect?: readonly number[];
  /** Text or bytes written to the child's stdin, or a file streamed into it (a large tar
   * need not fit in memory); stdin is closed either way. */
  input?: string | Uint8Array | { file: string };
  /** Extra environment on top of process.env (or instead of it with `replaceEnv`). */
  env?: Record<string, string | undefined>;
  replaceEnv?: boolean;
  cwd?: string;
  /** Kill the child after this many ms and throw TIMEOUT. */
  timeoutMs?: number;
  /** Error code for the thrown BbError (default SUBPROCESS). */
  errorCode?: ErrorCode;
  /** A sentence placed before the generic failure text ("Cannot create network x"). */
  what?: string;
  signal?: AbortSignal;
}

export interface RunResult {
  argv: string[];
  code: number;
  stdout: string;
  stderr: string;
}

function childEnv(opts: { env?: Record<string, string | undefined>; replaceEnv?: boolean }) {
  const base: Record<string, string | undefined> = opts.replaceEnv ? {} : { ...process.env };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base as NodeJS.ProcessEnv;
}

export function formatArgv(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(" ");
}

/**
 * Text with the credentials of any URL in it hidden ("https://user:token@host" ->
 * "https://***@host"), and anything shaped like a bottle's agent key (48 hex digits,
 * lib/http/agent-key.ts), which git-gate's and supervise's URLs carry in their path.
 * Argv and output go into logs and error messages, and some reach people the credential
 * is not for: git-gate's hook prints to the agent.
 */
export function redactCredentials(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@'"]+@/gi, "$1***@").replace(AGENT_KEY_PATTERN, "***");
}

/** argv as a shell line for people (logs, errors): quoted, URL credentials hidden. */
export function showArgv(argv: string[]): string {
  return redactCredentials(formatArgv(argv));
}

const shownArgv = (argv: string[]) => argv.map(redactCredentials);

function tail(text: string, lines = 8): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** The debug line that ends a run: how long the command took, for finding which of a
 * tool's subprocesses its time goes to. The start line has the whole argv; the head here
 * tells runs that overlap apart. */
function ranFor(argv: string[], code: number, ms: number): string {
  const shown = showArgv(argv);
  return `ran ${Math.round(ms)} ms, exit ${code}: ${shown.length > 100 ? `${shown.slice(0, 100)}...` : shown}`;
}

/** Run a command to completion, capturing stdout and stderr. */
export function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const expect = opts.expect ?? [0];
  log.debug(`run: ${showArgv(argv)}`);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(argv[0]!, argv.slice(1), {
        cwd: opts.cwd,
        env: childEnv(opts),
        stdio: ["pipe", "pipe", "pipe"],
        signal: opts.signal,
      });
    } catch (e) {
      reject(new BbError(opts.errorCode ?? "SUBPROCESS", `Cannot run ${argv[0]}: ${(e as Error).message}`, { cause: e, details: { argv: shownArgv(argv) } }));
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill("SIGKILL");
        }, opts.timeoutMs)
      : undefined;
    // A grandchild holding our pipes (git's remote helper, say) would keep "close" from
    // firing after a timeout: once the child itself has exited, stop reading.
    child.on("exit", () => {
      if (!timedOut) return;
      child.stdout!.destroy();
      child.stderr!.destroy();
    });
    child.stdout!.on("data", (b: Buffer) => out.push(b));
    child.stderr!.on("data", (b: Buffer) => err.push(b));
    child.stdin!.on("error", () => {}); // child may exit before reading its stdin
    const input = opts.input;
    if (input !== undefined && typeof input !== "string" && !(input instanceof Uint8Array)) {
      const source = createReadStream(input.file);
      source.on("error", (e) => {
        child.kill("SIGKILL");
        reject(new BbError(opts.errorCode ?? "SUBPROCESS", `${opts.what ? opts.what + ": cannot" : "Cannot"} read ${input.file} for ${argv[0]}: ${e.message}`, { cause: e, details: { argv: shownArgv(argv) } }));
      });
      source.pipe(child.stdin!);
    } else {
      child.stdin!.end(input ?? undefined);
    }
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      const hint = e.code === "ENOENT" ? ` (is ${argv[0]} installed and on PATH?)` : "";
      reject(new BbError(opts.errorCode ?? "SUBPROCESS", `${opts.what ? opts.what + ": cannot" : "Cannot"} run ${argv[0]}${hint}: ${e.message}`, { cause: e, details: { argv: shownArgv(argv) } }));
    });
    child.on("close", (code, sig) => {
      if (timer) clearTimeout(timer);
      const result: RunResult = {
        argv,
        code: code ?? (sig ? 128 + (signalNumber(sig) ?? 0) : 1),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      };
      log.debug(ranFor(argv, result.code, performance.now() - started));
      if (timedOut) {
        reject(new BbError("TIMEOUT", `${opts.what ? opts.what + ": " : ""}${showArgv(argv)} did not finish within ${opts.timeoutMs}ms`, { details: { argv: shownArgv(argv) } }));
        return;
      }
      if (!expect.includes(result.code)) {
        const why = redactCredentials(tail(result.stderr) || tail(result.stdout) || "(no output)");
        reject(
          new BbError(opts.errorCode ?? "SUBPROCESS", `${opts.what ? opts.what + ": " : ""}${showArgv(argv)} exited ${result.code}: ${why}`, {
            details: { argv: shownArgv(argv), exitCode: result.code, stderr: redactCredentials(tail(result.stderr, 20)) },
          }),
        );
        return;
      }
      resolve(result);
    });
  });
}

interface SpawnOptions {
  env?: Record<string, string | undefined>;
  replaceEnv?: boolean;
  cwd?: string;
  stdio?: StdioOptions;
}

/** Start a long-running or interactive child (daemons, `docker exec -it`). The caller owns it. */
export function start(argv: string[], opts: SpawnOptions = {}) {
  log.debug(`start: ${showArgv(argv)}`);
  return spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd, env: childEnv(opts), stdio: opts.stdio ?? "inherit" });
}

/** Hand `onLines` each batch of whole lines a started child writes to stdout or stderr
 * (a chunk from a pipe can end mid-line: the rest waits for its newline). */
export function onOutputLines(child: ChildProcess, onLines: (lines: string[]) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (text: string) => {
      const parts = (partial + text).split("\n");
      partial = parts.pop()!;
      onLines(parts);
    });
  }
}

interface InteractiveOptions extends SpawnOptions {
  /** Take the child's stdout as a pipe and hand it to this, which must read it to its end
   * (the promise settles once it is drained). */
  stdout?: (stream: Readable) => void;
  /** The same for the child's stderr; what is not taken stays inherited. */
  stderr?: (stream: Readable) => void;
  /** Ends the child when it fires, with `killWith` (default SIGTERM). */
  signal?: AbortSignal;
  killWith?: NodeJS.Signals;
  /** Run, within `timeoutMs`, once the child is ended because this process died before it:
   * what the child started elsewhere and cannot end itself (a `docker exec`'s command). */
  orphaned?: { argv: string[]; timeoutMs: number };
}

/** Run interactively with inherited stdio; resolves to the exit code (never throws on non-zero).
 * The child does not outlive this process, even one killed with SIGKILL (diesWithUs). */
export function runInteractive(argv: string[], opts: InteractiveOptions = {}): Promise<number> {
  const { stdout, stderr, signal, killWith = "SIGTERM", orphaned, ...spawnOpts } = opts;
  const piped = stdout || stderr ? (["inherit", stdout ? "pipe" : "inherit", stderr ? "pipe" : "inherit"] as StdioOptions) : undefined;
  const child = start(argv, { ...spawnOpts, stdio: piped ?? spawnOpts.stdio ?? "inherit" });
  diesWithUs(child, orphaned);
  if (stdout) stdout(child.stdout!);
  if (stderr) stderr(child.stderr!);
  const end = () => void child.kill(killWith);
  signal?.addEventListener("abort", end, { once: true });
  child.on("close", () => signal?.removeEventListener("abort", end));
  return exitOf(argv, child);
}

// Ignores the signals a terminal or a process group sends, so that only our end wakes it:
// the pipe's end with no line on it (a line is our word that the child is done). Then,
// given one, runs the orphaned command ($3...) for up to $2 seconds: its timer kills it
// past that, or is told (USR1) to end with its sleep once the command is done. KILL: what
// the watchdog starts ignores TERM as it does.
const WATCHDOG = `trap "" HUP INT QUIT TERM
if read -r _; then exit 0; fi
kill -TERM "$1" 2>/dev/null
[ $# -gt 2 ] || exit 0
limit=$2; shift 2
"$@" & cmd=$!
{ trap 'kill -KILL "$s"; exit' USR1; sleep "$limit" & s=$!; wait "$s" && kill -KILL "$cmd"; } & timer=$!
wait "$cmd"; kill -USR1 "$timer" 2>/dev/null`;

/**
 * A child of ours is reparented and runs on when we are killed with SIGKILL, which no
 * handler of ours sees (a `docker exec` then waits on forever, holding the command's
 * session), and node has no prctl(PR_SET_PDEATHSIG). The child cannot be put in a process
 * group of its own that we end either: an interactive one must stay in the terminal's
 * foreground group. So a watchdog sh reads a pipe from us that only our death closes, then
 * ends the child; as soon as the child exits, before its pid can be anyone else's, a line
 * on that pipe tells the watchdog to stand down. `orphaned` it runs after ending the child.
 */
function diesWithUs(child: ChildProcess, orphaned?: InteractiveOptions["orphaned"]): void {
  if (child.pid === undefined) return;
  const then = orphaned ? [String(Math.ceil(orphaned.timeoutMs / 1000)), ...orphaned.argv] : [];
  if (orphaned) log.debug(`if we die first: ${showArgv(orphaned.argv)}`);
  const dog = spawn("/bin/sh", ["-c", WATCHDOG, "sh", String(child.pid), ...then], { stdio: ["pipe", "ignore", "ignore"] });
  dog.on("error", () => {}); // no sh: the child is as unguarded as before
  dog.stdin?.on("error", () => {});
  // Told, not killed: Deno's kill() can close the pipe before the signal lands, which the
  // watchdog would take for our death.
  const release = () => void dog.stdin?.end("done\n");
  child.once("exit", release);
  child.once("error", release);
  // Never what keeps this process alive.
  dog.unref();
  (dog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
}

function exitOf(argv: string[], child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    child.on("error", (e) => reject(new BbError("SUBPROCESS", `Cannot run ${argv[0]}: ${e.message}`, { cause: e, details: { argv: shownArgv(argv) } })));
    child.on("close", (code, sig) => resolve(code ?? (sig ? 128 + (signalNumber(sig) ?? 0) : 1)));
  });
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGPIPE: 13, SIGTERM: 15 };
function signalNumber(sig: string): number | undefined {
  return SIGNALS[sig];
}

/**
 * True when `cmd` is an executable file on PATH (or, with a slash, at that path). Looked
 * up here rather than with `sh -c 'command -v'`: a subprocess per question cost bb-list
 * and bb-cleanup ~15 ms each, on every teardown.
 */
export async function which(cmd: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  if (!cmd) return false;
  // An empty PATH entry is the current directory, as in sh.
  const candidates = cmd.includes("/") ? [cmd] : (env.PATH ?? "").split(":").map((dir) => join(dir || ".", cmd));
  for (const path of candidates) {
    try {
      await access(path, constants.X_OK);
      if ((await stat(path)).isFile()) return true;
    } catch {
      // not here (or not executable): the next PATH entry
    }
  }
  return false;
}
