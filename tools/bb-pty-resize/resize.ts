// Window-size forwarding for `smolvm machine exec -t` on releases that do not forward it
// (before 0.8.1, the guest PTY starts at 0x0 and never follows the host terminal). The
// wrapped exec runs with the terminal inherited; on SIGWINCH (and once, late, at start)
// a second, short exec sets the size on every PTY in the guest with stty. That side
// channel gets /dev/null as stdin: sharing the terminal with the main exec makes smolvm
// kill one of them under tmux. The first sync waits ~2 s because an exec issued while the
// main one is still booting its guest process races libkrun (garbled config.json).
import process from "node:process";
import { log } from "../../lib/log.ts";
import { start } from "../../lib/proc.ts";
import { detectVersion } from "../../lib/smolvm/driver.ts";
import { capabilities } from "../../lib/smolvm/version.ts";

export const DEFAULT_FIRST_SYNC_MS = 2000;

interface PtyResizeOptions {
  /** The interactive command to run, e.g. smolvm machine exec -t --name M -- claude. */
  argv: string[];
  /** Machine for the side channel (default: the --name in argv). */
  machine?: string;
  /** smolvm executable for the version check and the side channel (default: argv[0]). */
  smolvm?: string;
  firstSyncMs?: number;
  env?: Record<string, string | undefined>;
  /** Override the terminal check (default: stdin and stdout are both TTYs). */
  interactive?: boolean;
}

/** The machine named by `--name X` / `--name=X` in a smolvm argv, if any. */
export function machineFromArgv(argv: string[]): string | null {
  const end = argv.indexOf("--");
  const flags = end === -1 ? argv : argv.slice(0, end);
  for (let i = 0; i < flags.length; i++) {
    if (flags[i] === "--name") return flags[i + 1] ?? null;
    if (flags[i]!.startsWith("--name=")) return flags[i]!.slice("--name=".length);
  }
  return null;
}

/** The side-channel exec that sets rows/cols on every PTY in the guest. */
export function sideChannelArgv(smolvm: string, machine: string, rows: number, cols: number): string[] {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) throw new RangeError(`bad window size ${rows}x${cols}`);
  const script = 'for p in /dev/pts/[0-9]*; do stty -F "$p" rows "$1" cols "$2"; done';
  return [smolvm, "machine", "exec", "--name", machine, "--", "sh", "-c", script, "sh", String(rows), String(cols)];
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal ? ({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal] : undefined;
  return 128 + (n ?? 0);
}

function runChild(argv: string[], env: PtyResizeOptions["env"], onSpawn: () => void = () => {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = start(argv, { env, stdio: "inherit" });
    // The terminal sends ^C/^\ to the child as well; the wrapper outlives them so it can
    // report the child's exit code. Termination requests are passed on.
    const ignore = () => {};
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on("SIGINT", ignore);
    process.on("SIGQUIT", ignore);
    process.on("SIGTERM", forward);
    process.on("SIGHUP", forward);
    const done = () => {
      process.off("SIGINT", ignore);
      process.off("SIGQUIT", ignore);
      process.off("SIGTERM", forward);
      process.off("SIGHUP", forward);
    };
    child.on("spawn", onSpawn);
    child.on("error", (e) => {
      done();
      reject(e);
    });
    child.on("close", (code, signal) => {
      done();
      resolve(exitCodeOf(code, signal));
    });
  });
}

/** Run the wrapped command, forwarding window size when needed; resolves with its exit code. */
export async function runWithPtyResize(opts: PtyResizeOptions): Promise<number> {
  const interactive = opts.interactive ?? Boolean(process.stdin.isTTY && process.stdout.isTTY);
  if (!interactive) {
    log.debug("pty-resize: stdin/stdout is not a terminal; running the command as it is");
    return runChild(opts.argv, opts.env);
  }
  const smolvm = opts.smolvm ?? opts.argv[0]!;
  const machine = opts.machine ?? machineFromArgv(opts.argv);
  if (!machine) throw new Error(`cannot tell which machine to resize: no --name in ${opts.argv.join(" ")} (pass --name)`);
  const version = await detectVersion({ bin: smolvm, env: opts.env });
  if (capabilities(version).execForwardsWinsize) {
    log.debug(`pty-resize: smolvm ${version.text} forwards the window size itself`);
    return runChild(opts.argv, opts.env);
  }
  return withResizeBridge({ ...opts, smolvm, machine });
}

async function withResizeBridge(opts: PtyResizeOptions & { smolvm: string; machine: string }): Promise<number> {
  let ready = false;
  let finished = false;
  let busy = false;
  let again = false;
  let last = "";

  /** Resolves true when the guest PTYs took the size. */
  const push = (rows: number, cols: number) =>
    new Promise<boolean>((resolve) => {
      const argv = sideChannelArgv(opts.smolvm, opts.machine, rows, cols);
      const child = start(argv, { env: opts.env, stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      child.stderr!.on("data", (b: Buffer) => (err += b.toString("utf8")));
      child.on("error", (e) => {
        log.debug(`pty-resize: side channel failed to start: ${e.message}`);
        resolve(false);
      });
      child.on("close", (code) => {
        if (code !== 0) log.debug(`pty-resize: side channel exited ${code}: ${err.trim()}`);
        resolve(code === 0);
      });
    });

  const sync = async () => {
    if (!ready || finished) return;
    if (busy) {
      again = true; // coalesce: one more run with whatever the size is by then
      return;
    }
    busy = true;
    do {
      again = false;
      const [cols, rows] = process.stdout.getWindowSize();
      // A SIGWINCH without a change (or a duplicate one) costs no exec.
      if (rows > 0 && cols > 0 && `${rows}x${cols}` !== last) {
        if (await push(rows, cols)) last = `${rows}x${cols}`;
      }
    } while (again && !finished);
    busy = false;
  };

  const onWinch = () => void sync();
  process.on("SIGWINCH", onWinch);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await runChild(opts.argv, opts.env, () => {
      timer = setTimeout(() => {
        ready = true;
        void sync();
      }, opts.firstSyncMs ?? DEFAULT_FIRST_SYNC_MS);
      timer.unref?.();
    });
  } finally {
    finished = true;
    if (timer) clearTimeout(timer);
    process.off("SIGWINCH", onWinch);
  }
}
