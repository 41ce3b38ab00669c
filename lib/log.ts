// The one logger. Everything people read goes to stderr; stdout is reserved for data
// (the plan, --json output). Level comes from BB_LOG_LEVEL or a tool's --verbose/--quiet.
// Every message is made printable (lib/printable.ts); raw() text is the caller's.
import process from "node:process";
import { printableLines } from "./printable.ts";

export type Level = "debug" | "info" | "warn" | "error" | "silent";
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** A progress step of a long operation ("bundle: starting firewall..."). */
  step(msg: string): void;
  /** Raw text to stderr, no prefix (preflight summary, tables for people). */
  raw(text: string): void;
  child(prefix: string): Logger;
  level(): Level;
}

interface LoggerOptions {
  level?: Level;
  prefix?: string;
  write?: (text: string) => void;
}

let fromEnv: { raw: string; level: Level } | undefined;

/**
 * BB_LOG_LEVEL's level, info when it is unset or empty. Every message asks, so the value is
 * parsed again only when it changed; one that is no level is said once, where the message
 * that asked goes, instead of being ignored without a word.
 */
function envLevel(write: (text: string) => void): Level {
  const raw = process.env.BB_LOG_LEVEL ?? "";
  if (fromEnv?.raw === raw) return fromEnv.level;
  const v = raw.toLowerCase();
  const known = Object.hasOwn(ORDER, v);
  fromEnv = { raw, level: known ? (v as Level) : "info" };
  if (raw !== "" && !known) {
    write(`${tool}warning: ${printableLines(`BB_LOG_LEVEL=${raw} is not a log level (one of ${Object.keys(ORDER).join(", ")}): using info`)}\n`);
  }
  return fromEnv.level;
}

let current: Level | undefined;

// The tool whose lines these are (setTool), said first on each warning, error and debug line.
let tool = "";

/**
 * Name the tool first on every line with a level tag ("bb-vm: warning: attach: ...",
 * "bb-vm: error: ...", "bb-vm: debug: run: ..."): `just start` runs five tools at once in
 * a pipe, and a line that does not say whose it is leaves the reader to guess. Info lines
 * (and step's "» ") are the tool's own words for people and stay as written. createProgram
 * (cli.ts) sets it for every tool; the sidecar daemons leave it unset, as init already puts
 * each daemon's name before its lines.
 */
export function setTool(name: string): void {
  tool = name ? `${name}: ` : "";
}

/** The name setTool() gave, "" when none. */
export function namedTool(): string {
  return tool.slice(0, -2);
}

/** Set the process-wide level (a tool's main does this once from its flags). */
export function setLogLevel(level: Level): void {
  current = level;
}

/**
 * Node queues writes to a stderr that is a pipe without bound when the reader is slower
 * (a daemon in the bundle, whose log goes through init to docker at a few MB/s): an
 * agent that has the firewall refuse request after request grew its memory by megabytes
 * a second, and put its answer to a reload signal (an info line) behind all of that,
 * later and later. So while more than this waits unwritten, warnings, errors and debug
 * lines (what the agent can have a daemon say over and over) are left out and counted,
 * and said once the queue is short again; info lines, a daemon's own doings, always go.
 */
const MAX_QUEUED = 1024 * 1024;
let leftOut = 0;

/**
 * A stderr that went away fails every write: a terminal closed under us (EIO: the window
 * closed, or `script` ended, and just start's teardown runs on in its exit trap), or a
 * reader that exited (EPIPE). Unheard, the stream's 'error' event ends the process, so
 * bb-cleanup in that teardown died at its first line with the bottle still there. What
 * people read is best effort: the work goes on, and nothing more is written there.
 */
let stderrGone = false;
process.stderr.on("error", () => void (stderrGone = true));

function toStderr(text: string, droppable: boolean): void {
  if (stderrGone) return;
  const queued = process.stderr.writableLength;
  if (droppable && queued > MAX_QUEUED) {
    leftOut++;
    return;
  }
  if (leftOut > 0 && queued <= MAX_QUEUED) {
    process.stderr.write(`${tool}warning: ${leftOut} log line(s) left out: they came faster than the log was read\n`);
    leftOut = 0;
  }
  process.stderr.write(text);
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const write = options.write ?? ((t: string) => toStderr(t, false));
  const prefix = options.prefix ?? "";
  const lvl = () => options.level ?? current ?? envLevel(write);
  const emit = (l: Level, tag: string, msg: string) => {
    if (ORDER[l] < ORDER[lvl()]) return;
    // Messages quote what came from inside a bottle (a header, a host, a path): no
    // control character reaches a terminal or `docker logs` raw (printable.ts).
    const text = `${l === "info" ? "" : tool}${prefix}${tag}${printableLines(msg)}\n`;
    if (options.write) options.write(text);
    else toStderr(text, l !== "info");
  };
  return {
    debug: (m) => emit("debug", "debug: ", m),
    info: (m) => emit("info", "", m),
    warn: (m) => emit("warn", "warning: ", m),
    error: (m) => emit("error", "error: ", m),
    step: (m) => emit("info", "» ", m),
    raw: (t) => {
      if (ORDER.info >= ORDER[lvl()]) write(t);
    },
    child: (p) => createLogger({ ...options, prefix: `${prefix}${p}: ` }),
    level: lvl,
  };
}

export const log: Logger = createLogger();
