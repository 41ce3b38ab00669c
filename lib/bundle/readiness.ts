// Waiting until each daemon in the bundle listens on its port. The check runs inside the
// bundle (docker exec), because egress listens on the bundle's loopback only and
// the internal network is not reachable from every host (Docker Desktop).
import { BbError } from "../errors.ts";
import { log } from "../log.ts";
import { boundedDocker } from "../docker/cmd.ts";
import { ANY_EXIT } from "../proc.ts";
import { inspectContainer } from "../docker/inspect.ts";
import { PORTS } from "../layout.ts";
import { procListeners } from "../proc-net-tcp.ts";
import type { Plan, Service } from "../plan/schema.ts";

// A daemon is up once its port is in LISTEN state (0A) in the bundle's /proc/net/tcp{,6}.
// Reading two files is a far cheaper probe than starting node in the bundle on every poll.
const POLL_MS = 20;
const WAIT_IN_BUNDLE_MS = 2000;

/**
 * One docker exec that polls inside the bundle until every port listens or `waitMs` has
 * passed, then prints /proc/net/tcp{,6} for listeningPorts() to judge. A docker exec costs
 * tens of ms, so polling from the host would see a daemon come up that much late.
 */
export function probeScript(ports: number[], waitMs: number): string {
  const listens = ports
    .map((p) => `grep -Eq '^ *[0-9]+: [0-9A-F]+:${p.toString(16).toUpperCase().padStart(4, "0")} [0-9A-F]+:[0-9A-F]+ 0A ' /proc/net/tcp /proc/net/tcp6 2>/dev/null`)
    .join(" && ");
  const polls = Math.max(0, Math.floor(waitMs / POLL_MS));
  return `i=0; while [ $i -lt ${polls} ] && ! { ${listens}; }; do sleep ${POLL_MS / 1000}; i=$((i+1)); done; cat /proc/net/tcp /proc/net/tcp6 2>/dev/null`;
}

/** Ports in LISTEN state in /proc/net/tcp{,6} text. */
export function listeningPorts(procNetTcp: string): Set<number> {
  return new Set(procListeners(procNetTcp).map((l) => l.port));
}

/** Exits of one daemon, while it is still not answering, that end the wait at once: it is
 * crashing at start (a bad config, a missing file), and init would restart it for ever. */
const EXITS_TO_GIVE_UP = 3;

/**
 * The first of `missing` that init's log (docker logs text) shows exiting at least
 * EXITS_TO_GIVE_UP times, with how often; null when none has.
 */
export function crashLooping(logText: string, missing: readonly Service[]): { name: Service; exits: number } | null {
  for (const name of missing) {
    const exits = logText.split("\n").filter((l) => l.startsWith(`init | ${name} exited (`)).length;
    if (exits >= EXITS_TO_GIVE_UP) return { name, exits };
  }
  return null;
}

const TARGETS: Record<Service, number> = {
  firewall: PORTS.firewall,
  egress: PORTS.egress,
  "git-gate": PORTS.gitGate,
  supervise: PORTS.supervise,
};

/** `what`: how errors start (default "Cannot start bundle for SLUG"; bb-provision says what it was doing). */
async function waitForDaemons(opts: { container: string; slug: string; services: Service[]; timeoutMs: number; signal?: AbortSignal; onProgress?: (up: Service[]) => void; what?: string }): Promise<void> {
  const what = opts.what ?? `Cannot start bundle for ${opts.slug}`;
  const deadline = Date.now() + opts.timeoutMs;
  let listening = new Set<number>();
  let reported = -1;
  while (true) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    // The probe alone while it works; only when it fails is the container inspected, to
    // tell a stopped bundle (an error now) from one still starting.
    const waitMs = Math.min(WAIT_IN_BUNDLE_MS, deadline - Date.now());
    const r = await boundedDocker(["exec", opts.container, "sh", "-c", probeScript(opts.services.map((s) => TARGETS[s]), waitMs)], {
      expect: ANY_EXIT,
      waitMs,
      what: `Cannot ask bundle ${opts.container} which daemons are up`,
      shown: `docker exec ${opts.container} sh -c <the readiness probe>`,
    });
    if (r.code === 0) listening = listeningPorts(r.stdout);
    else {
      const info = await inspectContainer(opts.container);
      // A container that is gone has no log to show: say where it went instead.
      if (!info) throw new BbError("BUNDLE", `${what}: its bundle container ${opts.container} is gone (docker rm, or bb-cleanup --slug ${opts.slug}, removed it)`);
      if (!info.state.running) throw new BbError("BUNDLE", `${what}: its bundle container ${opts.container} exited with code ${info.state.exitCode}${await logTail(opts.container)}`);
    }
    const ready = opts.services.filter((s) => listening.has(TARGETS[s]));
    if (ready.length !== reported) {
      reported = ready.length;
      opts.onProgress?.(ready);
    }
    if (ready.length === opts.services.length) return;
    // Still waiting after a full probe: a daemon that keeps crashing ends the wait now,
    // named with its log, rather than when the timeout does.
    if (r.code === 0 && waitMs >= WAIT_IN_BUNDLE_MS) {
      const missing = opts.services.filter((s) => !listening.has(TARGETS[s]));
      const logs = await boundedDocker(["logs", "--tail", "200", opts.container], { expect: [0, 1] }).catch(() => null);
      const looping = logs && crashLooping(logs.stdout + logs.stderr, missing);
      if (looping) {
        throw new BbError("BUNDLE", `${what}: daemon ${looping.name} keeps exiting (${looping.exits} times) instead of answering on ${TARGETS[looping.name]}${await logTail(opts.container)}`, {
          details: { missing, crashing: looping.name },
        });
      }
    }
    if (Date.now() > deadline) {
      const missing = opts.services.filter((s) => !listening.has(TARGETS[s]));
      const first = missing[0]!;
      throw new BbError(
        "TIMEOUT",
        `${what}: daemon ${first} did not answer on ${TARGETS[first]} within ${Math.round(opts.timeoutMs / 1000)}s` +
          (missing.length > 1 ? ` (also not up: ${missing.slice(1).join(", ")})` : "") +
          `${await logTail(opts.container)}`,
        { details: { missing } },
      );
    }
    // The probe waited in the bundle; a failed one waits here before the next.
    if (r.code !== 0) await new Promise((r) => setTimeout(r, 50));
  }
}

async function logTail(container: string): Promise<string> {
  const r = await boundedDocker(["logs", "--tail", "15", container], { expect: [0, 1] }).catch(() => null);
  const text = r ? (r.stdout + r.stderr).trim() : "";
  return text ? `\nlast bundle log lines:\n${text}` : "";
}

/** --ready-timeout's value (seconds, as typed) in ms; anything but a positive number is a usage error. */
export function readyTimeoutMs(seconds: string): number {
  const n = Number(seconds);
  if (!Number.isFinite(n) || n <= 0) throw new BbError("USAGE", `--ready-timeout wants a number of seconds above 0, got ${JSON.stringify(seconds)}`);
  return n * 1000;
}

/**
 * Wait until every daemon of a started bundle answers; the error names the first that did
 * not. `quietIfUp`: say nothing when all answer at the first look (bb-provision: after a
 * bb-bundle that waited and said so, or in the start flow where they came up meanwhile).
 */
export async function awaitBundle(
  plan: Pick<Plan, "slug" | "services"> & { bundle: { container: string } },
  opts: { timeoutMs?: number; signal?: AbortSignal; quietIfUp?: boolean; what?: string } = {},
): Promise<void> {
  let first = true;
  await waitForDaemons({
    what: opts.what,
    container: plan.bundle.container,
    slug: plan.slug,
    services: plan.services,
    timeoutMs: opts.timeoutMs ?? 30_000,
    signal: opts.signal,
    onProgress: (up) => {
      const quiet = first && opts.quietIfUp && up.length === plan.services.length;
      first = false;
      if (!quiet) log.step(`bundle: ${up.length}/${plan.services.length} daemons answering${up.length ? ` (${up.join(", ")})` : ""}`);
    },
  });
}
