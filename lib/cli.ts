// Shared scaffolding for every bb-* tool: one CLI library (commander), the common flags,
// the exit-code table in --help, reading the plan from stdin or --plan, and mapping
// errors to one stderr line (plus a JSON object with --json-errors) and an exit code.
import { existsSync, fstatSync, statSync } from "node:fs";
import process from "node:process";
import { Command, CommanderError, Option } from "commander";
import { boundedCallMs, DOCKER_ENVIRONMENT_HELP } from "./docker/cmd.ts";
import { BbError, EXIT, exitTableText, toBbError } from "./errors.ts";
import { log, namedTool, setLogLevel, setTool } from "./log.ts";
import { parsePlanText, readPlanFile, savePlan, serializePlan } from "./plan/io.ts";
import type { Plan, SectionName } from "./plan/schema.ts";

export { Command, Option };

export interface CommonOptions {
  plan?: string;
  jsonErrors?: boolean;
  verbose?: boolean;
  quiet?: boolean;
}

const COMMON_FLAGS = [
  ["--json-errors", "on failure also print a JSON error object (with a stable code) to stderr"],
  ["-v, --verbose", "log every subprocess and step (same as BB_LOG_LEVEL=debug)"],
  ["-q, --quiet", "only warnings and errors on stderr"],
] as const;

/** A commander program with the flags and help every tool shares. `docker`: the tool talks
 * to the Docker engine, so its --help lists BB_DOCKER_TIMEOUT, and a bad value is one
 * usage error before any subcommand does anything. Its warning, error and debug lines name
 * it (log.ts setTool), unless `sidecar`: a program of the sidecar bundle, whose lines are
 * named already, init putting each daemon's name before them ("firewall | ..."). */
export function createProgram(name: string, summary: string, opts: { example?: string; readsPlan?: boolean; readsManifest?: boolean; docker?: boolean; sidecar?: boolean } = {}): Command {
  if (!opts.sidecar) setTool(name);
  const program = addCommonFlags(new Command(name).description(summary))
    .helpOption("-h, --help", "show this help")
    .showHelpAfterError("(run with --help for usage)")
    // An error names the tool: in a pipe of four, "error: ..." alone leaves you to guess.
    .configureOutput({ writeOut: (s) => void process.stderr.write(s), writeErr: (s) => void process.stderr.write(s), outputError: (s, write) => write(`${name}: ${withFlagHint(program, s)}`) });
  if (opts.readsPlan) program.option("--plan <file>", "read the plan from FILE instead of stdin");
  const tail = [opts.example ? `Example:\n  ${opts.example}` : "", exitTableText({ plan: opts.readsPlan, manifest: opts.readsManifest })].filter(Boolean).join("\n\n");
  program.addHelpText("after", `\n${tail}\n`);
  if (opts.docker) program.addHelpText("after", DOCKER_ENVIRONMENT_HELP).hook("preAction", () => void boundedCallMs());
  return program;
}

/**
 * A commander option parser for a whole number of at least `min` (digits only: no "1e3",
 * no sign); anything else is a usage error naming the flag.
 */
export function wholeNumber(flag: string, min = 0): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min) {
      throw new BbError("USAGE", `${flag} wants a whole number${min > 0 ? ` of at least ${min}` : ""}, got ${JSON.stringify(text)}`);
    }
    return n;
  };
}

/** Read the plan from --plan FILE or stdin, requiring the given sections. A tool that
 * acts on a running bottle names its --slug in the messages (`instead`). */
export async function readPlanInput(options: CommonOptions, require: SectionName[] = [], instead = "--plan FILE"): Promise<Plan> {
  // A file that is not there is a bad flag value (exit 2); one that is there but holds no
  // valid plan is an invalid plan (exit 3).
  if (options.plan && !existsSync(options.plan)) throw new BbError("USAGE", `--plan ${options.plan}: no such file`);
  if (options.plan && statSync(options.plan).isDirectory()) throw new BbError("USAGE", `--plan ${options.plan} is a folder, not a plan file`);
  if (options.plan) return readPlanFile(options.plan, require);
  // Which plan, when none came: --slug for the tools that find a running bottle's.
  const ways = instead === "--plan FILE" ? "pass --plan FILE" : `pass ${instead} (bb-list shows them) or --plan FILE`;
  if (process.stdin.isTTY) throw new BbError("USAGE", `No plan: ${ways}, or pipe one in (bb-prepare AGENT | ...)`);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  if (text === "" && stdinIsPipe()) {
    // In a pipe that usually means the tool before this one failed and has said why.
    // The start flow sets BB_PIPE_STEP on the steps after the first: the one that failed
    // has said why, and a line from each step after it would only bury that.
    // No tool name: every error line starts with it already (reportError).
    throw new BbError("PLAN_INVALID", `Got no plan on stdin: the step before this one in the pipe failed or wrote nothing${instead === "--plan FILE" ? "" : ` (or pass ${instead})`}`, {
      details: process.env.BB_PIPE_STEP === "1" ? { quiet: true } : {},
    });
  }
  if (text.trim() === "") throw new BbError("USAGE", `No plan: stdin is empty; ${ways}, or pipe one in (bb-prepare AGENT | ...)`);
  return parsePlanText(text, require, "plan on stdin");
}

function stdinIsPipe(): boolean {
  try {
    return fstatSync(0).isFIFO();
  } catch {
    return false;
  }
}

/** Write the plan as the tool's only stdout output. */
export async function writePlan(plan: Plan): Promise<void> {
  try {
    await writeStdout(serializePlan(plan));
  } catch (e) {
    if (!(e instanceof BbError && e.details.closed)) throw e;
    // What this step made stays (the next step may have failed on its own input); the
    // person needs the one command that finds it again.
    throw new BbError("STATE", `${e.message}; bottle ${plan.slug} is left as this step made it: bb-cleanup --slug ${plan.slug} removes it`, {
      cause: e.cause,
    });
  }
}

let stdoutErrorsHeard = false;

/**
 * Write to stdout and wait until it is flushed. A reader that went away (the next step in
 * a pipe exited first) is a BbError, not an unhandled 'error' event and a stack trace.
 */
export function writeStdout(text: string): Promise<void> {
  // The stream also emits 'error' (after the callback); unheard, that crashes the process.
  if (!stdoutErrorsHeard) process.stdout.on("error", () => {});
  stdoutErrorsHeard = true;
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (e) => {
      if (!e) return resolve();
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EPIPE" || code === "ERR_STREAM_DESTROYED") {
        return reject(new BbError("STATE", "stdout was closed before the output was written: the next step in the pipe exited first", {
          cause: e,
          details: { closed: true },
        }));
      }
      reject(e);
    });
  });
}

function applyLogFlags(program: Command) {
  const o = program.opts<CommonOptions>();
  if (o.verbose) setLogLevel("debug");
  else if (o.quiet) setLogLevel("warn");
}

/**
 * Parse argv, run the action, and return the exit code. Actions return an exit code (or
 * nothing for 0) and throw BbError for failures; nothing here calls process.exit.
 */
async function runProgram(program: Command, argv: string[] = process.argv): Promise<number> {
  for (const c of allCommands(program)) {
    c.exitOverride();
    if (c !== program) addCommonFlags(c);
  }
  program.hook("preAction", (_this, actionCommand) => {
    applyLogFlags(program);
    if (actionCommand !== program) applyLogFlags(actionCommand);
  });
  let exitCode: number = EXIT.ok;
  program.setOptionValue("__exit", undefined);
  try {
    await program.parseAsync(argv);
    const fromAction = program.getOptionValue("__exit") as number | undefined;
    exitCode = fromAction ?? EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help, `help CMD` and --version exit 0; help shown because a subcommand is
      // missing (exitCode 1) is a usage error like any other.
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return EXIT.ok;
      if (e.code === "commander.help" && e.exitCode === 0) return EXIT.ok;
      // commander already printed the message; --json-errors still gets its object.
      if (wantsJsonErrors(program)) {
        const message = e.code === "commander.help" ? "a subcommand is required" : e.message.replace(/^error: /, "");
        process.stderr.write(JSON.stringify(new BbError("USAGE", message).toJSON()) + "\n");
      }
      return EXIT.usage;
    }
    let err = toBbError(e);
    // A Ctrl-C reaches the docker or git a tool was running too, which then "fails" with
    // 130: that is the interruption, not a second error. The child's exit and our own
    // signal come in on separate event-loop callbacks in either order, so a child that died
    // of one waits for ours to be handled first.
    if (!interruptedBy && diedOfSignal(e)) await signalHandled();
    if (interruptedBy && err.code !== "INTERRUPTED") {
      log.debug(err.message);
      err = new BbError("INTERRUPTED", `Interrupted by ${interruptedBy}`, { cause: err });
    }
    if (err.code === "INTERRUPTED" && process.env.BB_PIPE_STEP === "1") err.details.quiet = true;
    reportError(program, err);
    return err.exitCode;
  }
  return exitCode;
}

/** Whether a failure is a child process that exited 130 or 143 (SIGINT, SIGTERM), anywhere
 * along the error's causes. */
function diedOfSignal(e: unknown): boolean {
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 10; c = c.cause, depth++) {
    const code = c instanceof BbError ? c.details.exitCode : undefined;
    if (code === 130 || code === 143) return true;
  }
  return false;
}

/** A few event-loop turns (at most ~1 s) for a signal already sent to this process's
 * group to reach interruptSignal()'s handler. */
async function signalHandled(): Promise<void> {
  for (let i = 0; i < 100 && !interruptedBy; i++) await new Promise((r) => setTimeout(r, 10));
}

/** Use inside an action to hand a non-zero exit code back to runProgram. */
export function setExitCode(program: Command, code: number): void {
  let root: Command = program;
  while (root.parent) root = root.parent;
  root.setOptionValue("__exit", code);
}

function reportError(program: Command, err: BbError) {
  if (err.details.quiet === true) log.debug(err.message);
  // Named once: by setTool, or here for a program that leaves that to init.
  else (namedTool() === program.name() ? log : log.child(program.name())).error(err.message);
  if (log.level() === "debug" && err.cause instanceof Error && err.cause.stack) log.debug(err.cause.stack);
  if (wantsJsonErrors(program)) process.stderr.write(JSON.stringify(err.toJSON()) + "\n");
}

// From argv too: the flag may sit after a subcommand, or parsing may have failed first.
function wantsJsonErrors(program: Command): boolean {
  return Boolean(program.opts<CommonOptions>().jsonErrors) || process.argv.includes("--json-errors");
}

/** A word `key=value` where the tool wants a flag (`just cleanup slug=S`, as `just start
 * slug=S` is written) is refused as an extra argument or an unknown command; the refusal
 * then names the flag of that name the tool has. */
function withFlagHint(program: Command, message: string): string {
  if (!/too many arguments|unknown command/.test(message)) return message;
  for (const word of process.argv.slice(2)) {
    const m = /^([a-z][a-z-]*)=(.*)$/s.exec(word);
    const option = m && allCommands(program).flatMap((c) => c.options).find((o) => o.long === `--${m[1]}`);
    if (!m || !option) continue;
    const flag = option.isBoolean() ? option.long! : `${option.long} ${m[2]}`;
    return message.replace(/\n?$/, ` (did you mean ${flag}?)\n`);
  }
  return message;
}

function allCommands(c: Command): Command[] {
  return [c, ...c.commands.flatMap(allCommands)];
}

/** The common flags on a subcommand too, so `bb-vm exec -q ...` means what `bb-vm -q` does
 * (tools with positional options hand everything after the subcommand to it). */
function addCommonFlags(c: Command): Command {
  for (const [flags, description] of COMMON_FLAGS) {
    const long = flags.split(" ").at(-1);
    if (!c.options.some((o) => o.long === long)) c.option(flags, description);
  }
  return c;
}


/** The signal interruptSignal() caught, if any: runProgram reports a failure after it as
 * the interruption. */
let interruptedBy: NodeJS.Signals | null = null;
/** Set once a signal can no longer stop the tool (lastStop, or its action over): what a
 * late one is told instead of "rolling back". */
let tooLate: string | null = null;

/**
 * An AbortSignal that fires on SIGINT/SIGTERM, so a tool can stop and roll back what it
 * created instead of dying half-way. Call once per tool. `stopping`: what the signal is
 * told, for a tool that stops but has nothing it can roll back.
 */
export function interruptSignal(stopping = "stopping and rolling back"): AbortSignal {
  const ac = new AbortController();
  // Ctrl-C reaches every step of the start flow's pipe: the first one speaks for all.
  const say = (text: string) => (process.env.BB_PIPE_STEP === "1" ? log.debug(text) : log.warn(text));
  const onSig = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) return;
    // Nothing stops or rolls back now: saying so would be a lie.
    if (tooLate !== null) return say(`${sig} received too late to stop: ${tooLate}`);
    interruptedBy = sig;
    say(`${sig} received: ${stopping}`);
    ac.abort(new BbError("INTERRUPTED", `Interrupted by ${sig}`));
  };
  process.once("SIGINT", onSig);
  process.once("SIGTERM", onSig);
  return ac.signal;
}

/**
 * The last point at which a Ctrl-C stops the tool, right before its output goes out
 * (writePlan): throws the interruption when a signal came before it, for the caller to roll
 * back as for any; after it a signal stops nothing, and is told `note` (what stays, and
 * how to remove it). Only the output's synchronous write may follow: a signal's handler
 * runs between event-loop turns, so none can come in between.
 */
export async function lastStop(signal: AbortSignal, note: string): Promise<void> {
  await signalsHandled();
  signal.throwIfAborted();
  tooLate = note;
}

/**
 * The handOver of a step after bb-prepare (bb-bundle, bb-vm, bb-provision): the plan it made saved in the
 * bottle's folder, then lastStop; interrupted there, the saved plan goes back to `given`,
 * the one that came in, for the step's rollback to leave the bottle as it found it.
 */
export function savedThenLastStop(given: Plan, signal: AbortSignal, note: string): (made: Plan) => Promise<void> {
  return async (made) => {
    await savePlan(made);
    await lastStop(signal, note).catch(async (e: unknown) => {
      await savePlan(given);
      throw e;
    });
  };
}

/** Two event-loop turns: a signal delivered to this process before the call is handled in
 * the poll phase of one of them (the first may begin past its poll), whichever phase the
 * call came in. */
async function signalsHandled(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
}

/** Entry point helper for tools/<name>/main.ts. */
export async function mainOf(program: Command): Promise<void> {
  const code = await runProgram(program);
  // A signal that came as the action ended is told so, never taken for one to act on, nor
  // left unhandled at exit (the handler would run or not by the event loop's timing).
  // A failure after lastStop (the plan's reader gone) has said what is left: its note,
  // that the plan went out, would not hold.
  if (code !== EXIT.ok) tooLate = `${program.name()} had ended (said above): nothing left to stop or roll back`;
  else tooLate ??= `${program.name()} had finished: nothing left to stop or roll back`;
  await signalsHandled();
  process.exitCode = code;
}
