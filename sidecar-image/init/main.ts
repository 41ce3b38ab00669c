// init: PID 1 of the sidecar bundle. Starts the daemons listed in BB_SERVICES (firewall,
// egress, git-gate, supervise), each with only the environment it needs, prefixes their
// output with their name, restarts a crashed one with backoff, and maps signals:
//   SIGTERM/SIGINT -> stop every daemon, then exit    SIGUSR1 -> restart the firewall only
//   SIGHUP         -> forward to egress and the firewall, which re-read their routes and
//                     policy live: no connection drops (an approved host takes effect so)
// With BB_DAEMON_IDS each daemon runs under its own uid (identity.ts), and git-gate keeps
// its mirrors in a folder of its own in the bottle's volume (store.ts).
// Exit codes: 0 after a stop, 2 bad flags or service list, 1 anything else.
//
//   BB_SERVICES=firewall,egress BB_SLUG=researcher-k3x9 node /opt/bb/sidecar/init.js
import process from "node:process";
import { createProgram, mainOf } from "../../lib/cli.ts";
import { BbError } from "../../lib/errors.ts";
import { asDaemon, DAEMON_HOME, ensurePasswdEntries, parseDaemonIds } from "./identity.ts";
import { defaultArgv, envFor, parseArgvOverride, parseServices, SERVICES } from "./services.ts";
import { BUNDLE_PATHS, GIT_GATE_DATA } from "../../lib/layout.ts";
import { prepareGitGateData } from "./store.ts";
import { createSupervisor } from "./supervisor.ts";

/** git-gate's data folder when init runs every daemon as itself (the image's, bb's). */
const BY_HAND_DATA = "/var/lib/bb/git-gate";

interface Flags {
  services: string;
  argvJson?: string;
  sidecarDir: string;
  backoffInitial: string;
  backoffMax: string;
  stableAfter: string;
  stopTimeout: string;
}

function ms(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new BbError("USAGE", `${flag} wants milliseconds, got ${JSON.stringify(text)}`);
  return n;
}

async function runInit(flags: Flags): Promise<void> {
  const services = parseServices(flags.services);
  const override = parseArgvOverride(flags.argvJson);
  const ids = parseDaemonIds(process.env.BB_DAEMON_IDS);
  if (Object.keys(ids).length) ensurePasswdEntries(ids);
  const note = (msg: string) => void process.stdout.write(`init | ${msg}\n`);
  // git-gate under a uid of its own keeps its mirrors in the bottle's volume; run by hand,
  // as init itself, in the image's folder.
  const gitGate = services.includes("git-gate") && !override["git-gate"] ? ids["git-gate"] : undefined;
  if (gitGate) {
    const made = await prepareGitGateData(BUNDLE_PATHS.gitGateStore, GIT_GATE_DATA, gitGate);
    if (made) note(made);
  }
  const ctx = {
    sidecarDir: flags.sidecarDir,
    slug: process.env.BB_SLUG,
    services,
    upstreamCa: process.env.BB_UPSTREAM_CA || undefined,
    loopbackAddr: process.env.BB_LOOPBACK_ADDR || undefined,
    gitGateData: ids["git-gate"] ? GIT_GATE_DATA : BY_HAND_DATA,
  };
  // Resolve the whole table up front so a missing BB_SLUG fails before anything starts.
  const argv = Object.fromEntries(services.map((s) => {
    const plain = override[s] ?? defaultArgv(s, ctx);
    return [s, ids[s] ? asDaemon(plain, ids[s]) : plain];
  }));
  const backlogged = () => process.stdout.writableLength + process.stderr.writableLength > 1024 * 1024;
  const supervisor = createSupervisor({
    services,
    argv: (s) => argv[s]!,
    env: (s) => ({ ...envFor(s, process.env), ...(ids[s] ? { HOME: DAEMON_HOME } : {}) }),
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    // Node queues what docker reads slower than daemons write without bound: past 1 MiB,
    // init reads no more of it until the queue is short again.
    backlog: {
      full: backlogged,
      onDrain: (resume) => {
        const check = () => (backlogged() ? setTimeout(check, 20) : resume());
        setTimeout(check, 20);
      },
    },
    backoff: { initialMs: ms(flags.backoffInitial, "--backoff-initial"), maxMs: ms(flags.backoffMax, "--backoff-max"), resetAfterMs: ms(flags.stableAfter, "--stable-after") },
    stopTimeoutMs: ms(flags.stopTimeout, "--stop-timeout"),
  });

  // Handlers first: as PID 1 a signal without a handler is simply dropped by the kernel.
  process.on("SIGUSR1", () => {
    if (!supervisor.restart("firewall")) note("SIGUSR1: firewall is not running in this bundle; nothing to restart");
  });
  process.on("SIGHUP", () => {
    const reached = (["firewall", "egress"] as const).filter((d) => supervisor.signal(d, "SIGHUP"));
    if (!reached.length) note("SIGHUP: neither the firewall nor egress is running in this bundle; nothing to reload");
  });
  const stopped = new Promise<void>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      process.on(sig, () => {
        note(`${sig}: stopping ${Object.keys(supervisor.pids()).join(", ") || "nothing"}`);
        void supervisor.stop().then(resolve);
      });
    }
  });
  note(`supervising ${services.join(", ") || "no services"} (known: ${SERVICES.join(", ")})`);
  supervisor.start();
  await stopped;
  note("all daemons stopped; exiting");
  // The signal handlers would keep the event loop alive.
  for (const sig of ["SIGUSR1", "SIGHUP", "SIGTERM", "SIGINT"] as const) process.removeAllListeners(sig);
}

const program = createProgram("init", "The sidecar bundle's init: runs the listed daemons and maps container signals onto them.", {
  example: "BB_SERVICES=firewall,egress BB_SLUG=demo init",
  sidecar: true,
})
  .option("--services <list>", "comma list of daemons to run", process.env.BB_SERVICES ?? "")
  .option("--argv-json <json>", 'replace the argv of some daemons: {"firewall": ["node", "fake.js"]} (tests)', process.env.BB_INIT_ARGV)
  .option("--sidecar-dir <dir>", "where the daemons' .js files are", process.env.BB_SIDECAR_DIR ?? "/opt/bb/sidecar")
  .option("--backoff-initial <ms>", "delay before restarting a crashed daemon", "500")
  .option("--backoff-max <ms>", "the delay doubles per crash up to this", "30000")
  .option("--stable-after <ms>", "a daemon up this long restarts at the initial delay again", "60000")
  .option("--stop-timeout <ms>", "SIGKILL a daemon this long after SIGTERM (below docker stop's 10s)", "8000")
  .action((flags: Flags) => runInit(flags));

await mainOf(program);
