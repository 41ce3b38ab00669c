// The git-gate daemon as a library: a git:// server (TCP, port 9418) that serves only the
// bottle's declared repos from local mirrors. Fetches run `git upload-pack` on a mirror
// freshly synced from upstream (or as it stands while a push to it is in progress);
// pushes run `git receive-pack` with core.hooksPath set to the hooks bb-prepare wrote,
// whose pre-receive calls back into this program (`hook pre-receive`) to enforce the push
// policy and forward to upstream.
import type { Buffer } from "node:buffer";
import { existsSync } from "node:fs";
import net from "node:net";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { join } from "node:path";
import { createLogger, type Logger } from "../../lib/log.ts";
import { createAgentLines } from "../../lib/log-limit.ts";
import { printable } from "../../lib/printable.ts";
import { start } from "../../lib/proc.ts";
import type { GitGateConfig } from "../../lib/sidecar-config.ts";
import { errPkt, parseRequest, readFirstPkt, type GitRequest } from "./pktline.ts";
import { createRegistry, type GateDirs, type Registry, type Repo } from "./repos.ts";
import { NO_REPLACE } from "./policy.ts";
import { isAgentKey } from "../../lib/http/agent-key.ts";
import { BbError } from "../../lib/errors.ts";

/** Environment receive-pack hands to the hook: how to call back and what to enforce. */
export const HOOK_ENV = {
  command: "BB_GIT_GATE_HOOK",
  config: "BB_GIT_GATE_CONFIG",
  repo: "BB_GIT_GATE_REPO",
  data: "BB_GIT_GATE_DATA",
  identities: "BB_GIT_GATE_IDENTITIES",
  /** The fd (inherited through receive-pack) on which the hook writes lines for the gate's log. */
  log: "BB_GIT_GATE_LOG_FD",
} as const;

/** The fd receive-pack gets for the hook's lines to the gate's log: its stderr goes to the agent. */
const HOOK_LOG_FD = 3;

interface GitGateOptions {
  config: GitGateConfig;
  /** The config file, re-read by the hook process. */
  configPath: string;
  dirs: GateDirs;
  /** Hooks dir (core.hooksPath for pushes); without it every push is refused. */
  hooksDir: string | null;
  /** Shell-quoted command line of this program; the hook runs `$cmd hook pre-receive`. */
  hookCommand: string;
  log?: Logger;
  /** A session with no bytes either way for this long is ended (default 5 minutes). */
  idleTimeoutMs?: number;
  /** How long a session waits for its turn at a mirror (repos.ts: a push behind another
   * push) before it is refused (default TURN_WAIT_MS). */
  turnWaitMs?: number;
  /** Sessions at once; one more is refused (default MAX_SESSIONS). */
  maxSessions?: number;
  /** Serve only paths under /KEY/ (the bottle's agent key, lib/http/agent-key.ts): the
   * port is on host loopback, open to every local user. */
  agentKey?: string;
}

/** One bottle's agent never needs more git sessions at once; each costs a git process. */
export const MAX_SESSIONS = 16;

/** How long a client has to send its request line, and a refused one to close. */
const REQUEST_TIMEOUT_MS = 10_000;

/** A waiting session holds a place under MAX_SESSIONS and shows its client nothing: two minutes, then a reason. */
export const TURN_WAIT_MS = 120_000;

interface GitGate {
  server: net.Server;
  registry: Registry;
  close(): Promise<void>;
}

const SERVICES = new Set(["git-upload-pack", "git-receive-pack"]);

// receive-pack checks every pushed object, and what git only warns about by default is an
// error here: a tree entry named ".git", ".", "..", "" or starting with "/" is one no
// path rule can judge by its text, and a careless client's checkout may act on it.
// A pack over MAX_PUSH is refused as it arrives: the quarantine lives in the host's state
// dir, which an agent pushing without end would fill.
const MAX_PUSH = "1g";
const RECEIVE_CONFIG = [
  "receive.fsckObjects=true",
  ...["hasDotgit", "hasDot", "hasDotdot", "fullPathname", "emptyName"].map((id) => `receive.fsck.${id}=error`),
  `receive.maxInputSize=${MAX_PUSH}`,
].flatMap((c) => ["-c", c]);

/** The request with its leading /KEY segment taken off, or null when it does not start
 * with the key. */
function withoutKey(req: GitRequest, key: string): GitRequest | null {
  const m = /^\/([^/]*)(\/.*)$/s.exec(req.path);
  return m && isAgentKey(m[1], key) ? { ...req, path: m[2]! } : null;
}

export function createGitGate(opts: GitGateOptions): GitGate {
  const log = opts.log ?? createLogger({ prefix: "git-gate: " });
  const registry = createRegistry(opts.config, opts.dirs, { turnWaitMs: opts.turnWaitMs ?? TURN_WAIT_MS });
  const sockets = new Set<net.Socket>();
  // The agent can open a session a few thousand times a second and have each refused, or
  // start git after git that fails the same way: the first of each line, then counts
  // (lib/log-limit.ts). What git says of pushes (the hook's refusals) has lines of its own,
  // so junk sessions or fetches cannot use up what the log may take of them.
  const sessionLines = createAgentLines({ log, what: "warnings about sessions" });
  const gitLines = {
    "git-upload-pack": createAgentLines({ log, what: "lines from git upload-pack" }),
    "git-receive-pack": createAgentLines({ log, what: "lines from git receive-pack" }),
  };
  // What the push hook tells the operator (a push that stands unchecked) apart from the
  // agent: an agent pushing in a loop could cause it each time.
  const hookLines = createAgentLines({ log, what: "lines from the push hook" });

  function refuse(socket: net.Socket, message: string) {
    sessionLines.warn(`refused: ${printable(message)}`);
    socket.end(errPkt(`git-gate: ${message}`));
    // What the client sent is not read: unread, it hid the client's own close behind it, so
    // a refused client that closed still held a place under the session cap until the
    // timeout below, and a client retrying at the cap kept every place taken.
    socket.resume();
    // A client that never closes its side would hold a place under the session cap.
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
  }

  function serviceArgv(req: GitRequest, repo: Repo): string[] {
    if (req.service === "git-upload-pack") return ["git", "upload-pack", "--strict", "--timeout=600", repo.dir];
    return ["git", "-c", `core.hooksPath=${opts.hooksDir}`, ...RECEIVE_CONFIG, "receive-pack", repo.dir];
  }

  function serviceEnv(req: GitRequest, repo: Repo): Record<string, string | undefined> {
    const env: Record<string, string | undefined> = { ...NO_REPLACE, GIT_PROTOCOL: req.extra.length ? req.extra.join(":") : undefined };
    if (req.service === "git-receive-pack") {
      env[HOOK_ENV.command] = opts.hookCommand;
      env[HOOK_ENV.config] = opts.configPath;
      env[HOOK_ENV.repo] = repo.key;
      env[HOOK_ENV.data] = opts.dirs.data;
      env[HOOK_ENV.identities] = opts.dirs.identities ?? undefined;
      env[HOOK_ENV.log] = String(HOOK_LOG_FD);
    }
    return env;
  }

  async function session(socket: net.Socket) {
    let first: { payload: Buffer; rest: Buffer };
    try {
      first = await readFirstPkt(socket, REQUEST_TIMEOUT_MS);
    } catch (e) {
      sessionLines.warn(`dropped connection from ${socket.remoteAddress}: ${(e as Error).message}`);
      socket.destroy();
      return;
    }
    const parsed = parseRequest(first.payload);
    if (!parsed) return refuse(socket, "malformed request line");
    const req = opts.agentKey === undefined ? parsed : withoutKey(parsed, opts.agentKey);
    // Said without the path: it would hold whatever key the client tried.
    if (!req) return refuse(socket, "this git-gate serves only its bottle's agent, whose git URLs carry the key");
    if (!SERVICES.has(req.service)) return refuse(socket, `service ${req.service} is not offered (only fetch and push)`);
    const found = registry.lookup(req.path);
    if (!found.ok) return refuse(socket, found.reason);
    const repo = found.repo;
    const pushing = req.service === "git-receive-pack";
    if (pushing && !opts.hooksDir) return refuse(socket, `pushes to ${repo.key} are disabled: git-gate runs without a hooks dir`);
    const said = pushing ? gitLines["git-receive-pack"] : gitLines["git-upload-pack"];
    // Said, or a session held until a slow push ends would look hung.
    if (pushing && registry.pushing(repo)) said.info(`push ${repo.key} from ${socket.remoteAddress} waits for the push in progress to it to end`);
    const busy = (e: unknown) => e instanceof BbError && e.code === "BUSY";
    try {
      const synced = pushing ? await registry.sync(repo).then(() => true) : await registry.syncUnlessPushing(repo);
      if (!synced) said.info(`fetch ${repo.key} from ${socket.remoteAddress} is served the mirror as it stands, not fetched from upstream first: a push to it is in progress, which brings the mirror to upstream's refs when it ends`);
    } catch (e) {
      if (busy(e)) return refuse(socket, (e as Error).message);
      // A mirror that exists is served stale rather than not at all; the push hook
      // talks to upstream itself and fails there if it is really gone.
      if (!existsSync(join(repo.dir, "HEAD"))) return refuse(socket, `cannot fetch ${repo.key} from its upstream`);
      sessionLines.warn(`serving ${repo.key} from the mirror as it is: ${(e as Error).message}`);
    }
    if (socket.destroyed) return;
    // No sync may move the mirror's refs while receive-pack runs (turns.ts).
    let endTurn = () => {};
    if (pushing) {
      try {
        endTurn = await registry.receive(repo);
      } catch (e) {
        if (busy(e)) return refuse(socket, (e as Error).message);
        throw e;
      }
    }
    if (socket.destroyed) return endTurn();
    // From here on git keeps a live session talking (keep-alive packets while a hook or a
    // pack is being computed), so a session silent this long is one nobody finishes.
    const idleMs = opts.idleTimeoutMs ?? 300_000;
    socket.setTimeout(idleMs, () => {
      sessionLines.warn(`ended a session from ${socket.remoteAddress}: nothing sent either way for ${idleMs / 1000}s`);
      socket.destroy();
    });
    // Each push is said (it goes upstream); fetches, which a loop can start 170 times a
    // second, as the first of each repo and address, then counts.
    if (pushing) log.info(`push ${repo.key} from ${socket.remoteAddress}`);
    else said.info(`fetch ${repo.key} from ${socket.remoteAddress}`);
    let child;
    try {
      child = start(serviceArgv(req, repo), { env: serviceEnv(req, repo), stdio: pushing ? ["pipe", "pipe", "pipe", "pipe"] : ["pipe", "pipe", "pipe"] });
    } catch (e) {
      endTurn();
      throw e;
    }
    child.once("close", endTurn);
    child.once("error", endTurn);
    if (pushing) {
      const fromHook = child.stdio[HOOK_LOG_FD] as Readable;
      fromHook.on("error", () => {});
      createInterface({ input: fromHook, crlfDelay: Infinity }).on("line", (line) => {
        if (line.trim()) hookLines.warn(`push to ${repo.key}: ${printable(line)}`);
      });
    }
    const what = `${req.service.slice(4)} ${repo.key}`;
    child.stderr!.on("data", (b: Buffer) => {
      for (const line of b.toString("utf8").split("\n")) if (line.trim()) said.warn(`${what}: ${printable(line)}`);
    });
    child.stdin!.on("error", () => {});
    child.stdout!.on("error", () => {});
    child.on("error", (e) => {
      sessionLines.error(`cannot run ${req.service}: ${e.message}`);
      socket.destroy();
    });
    child.on("close", () => socket.end());
    socket.on("close", () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    });
    if (first.rest.length) child.stdin!.write(first.rest);
    socket.pipe(child.stdin!);
    child.stdout!.pipe(socket);
    socket.resume();
  }

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", (e) => log.debug(`connection error: ${e.message}`));
    // A client that opens sessions and never finishes them would pile up git processes
    // in the bundle the firewall shares: cap how many run (and end the quiet ones, below).
    if (sockets.size > (opts.maxSessions ?? MAX_SESSIONS)) {
      return refuse(socket, `too many git sessions at once (at most ${opts.maxSessions ?? MAX_SESSIONS}); try again when one ends`);
    }
    session(socket).catch((e: Error) => {
      sessionLines.error(`session failed: ${e.message}`);
      socket.destroy();
    });
  });

  return {
    server,
    registry,
    close() {
      for (const l of [sessionLines, hookLines, ...Object.values(gitLines)]) l.close(); // counts still pending are said
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
