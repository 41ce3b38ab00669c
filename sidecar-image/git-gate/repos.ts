// Which repositories the gate serves and where they live: a declared repo
// "<host>/<owner>/<repo>" maps to a bare mirror under the data dir and to
// "<upstream.url>/<owner>/<repo>" upstream, reached with the upstream's identity (an SSH
// key the agent never sees). Mirrors are created on first use and fetched before every
// session, one sync per repo at a time, and never while a push's receive-pack runs in it
// (turns.ts): a fetch that comes then is served the mirror as it stands instead of
// waiting for the push. An upstream's SSH host key is the one the bottle
// pins (host_key), else the first one seen, kept in the gate's known_hosts from then on.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import process from "node:process";
import { BbError } from "../../lib/errors.ts";
import { formatArgv, run } from "../../lib/proc.ts";
import type { GitGateConfig } from "../../lib/sidecar-config.ts";
import { recordPruned } from "./deleted.ts";
import { refValues } from "./diff.ts";
import { createTurns } from "./turns.ts";

export type Upstream = GitGateConfig["upstreams"][number];

export interface Repo {
  /** "<host>/<owner>/<repo>" as declared. */
  key: string;
  upstream: Upstream;
  /** Where git fetches from and pushes to. */
  url: string;
  /** The gate's bare mirror. */
  dir: string;
}

export interface GateDirs {
  data: string;
  identities: string | null;
}

const SEGMENT = /^(?!\.{1,2}$)[A-Za-z0-9._:-]+$/;

/** "/host/owner/repo.git/" -> "host/owner/repo"; null when it is not a safe repo path. */
export function normalizeRepoPath(path: string): string | null {
  const key = path.replace(/^\/+/, "").replace(/\/+$/, "").replace(/\.git$/, "");
  const parts = key.split("/");
  if (parts.length < 3 || !parts.every((p) => SEGMENT.test(p))) return null;
  return key;
}

function joinUrl(base: string, rest: string): string {
  return /[/:]$/.test(base) ? `${base}${rest}` : `${base}/${rest}`;
}

/** Git's view of an upstream URL with any user:password@ removed, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^/@]*@/, "//");
}

/** Where the pinned host keys of `upstream` are written (createRegistry writes them). */
export function pinnedKnownHosts(upstream: Upstream, dirs: GateDirs): string {
  return join(dirs.data, `known_hosts.pinned.${upstream.host}`);
}

// ssh looks pinned keys up under this name, not the upstream's host[:port], so the file
// need not spell ssh's host forms ("[host]:2222").
const keyAlias = (upstream: Upstream) => `bb-upstream.${upstream.host}`;

/**
 * A file:// upstream is a folder of yours that git-gate may reach under another uid (in the
 * bundle, its own), and git then refuses it as "dubious ownership" unless the
 * global config trusts it (git 2.39 honours safe.directory from no other place for the
 * upload-pack and receive-pack it runs there). The git commands given this config only
 * ever open the gate's own mirror and the upstream folder the bottle declares.
 */
function trustLocalUpstreams(dirs: GateDirs): string {
  const file = join(dirs.data, "local-upstream.gitconfig");
  if (!existsSync(file)) {
    mkdirSync(dirs.data, { recursive: true });
    writeFileSync(file, "[safe]\n\tdirectory = *\n");
  }
  return file;
}

/** Environment for git commands that talk to `upstream` (fetch, push). */
export function upstreamEnv(upstream: Upstream, dirs: GateDirs): Record<string, string> {
  // A stalled upstream fails the transfer instead of holding it (and the agent's push) open:
  // HTTP below 1 KB/s for a minute, or an SSH peer silent for a minute.
  const env: Record<string, string> = { GIT_TERMINAL_PROMPT: "0", GIT_HTTP_LOW_SPEED_LIMIT: "1000", GIT_HTTP_LOW_SPEED_TIME: "60" };
  if (upstream.url.startsWith("file://")) env.GIT_CONFIG_GLOBAL = trustLocalUpstreams(dirs);
  if (!upstream.identity && !upstream.hostKeys) return env;
  const ssh = ["ssh", "-o", "ConnectTimeout=30", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"];
  if (upstream.identity) ssh.push("-i", join(dirs.identities ?? "", upstream.identity), "-o", "IdentitiesOnly=yes");
  if (upstream.hostKeys) {
    ssh.push("-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${pinnedKnownHosts(upstream, dirs)}`, "-o", `HostKeyAlias=${keyAlias(upstream)}`);
  } else {
    ssh.push("-o", "StrictHostKeyChecking=accept-new", "-o", `UserKnownHostsFile=${join(dirs.data, "known_hosts")}`);
  }
  env.GIT_SSH_COMMAND = formatArgv(ssh);
  return env;
}

/** The refs of the bare repo at `gitDir`, each with its value. */
const refsOf = (gitDir: string) =>
  refValues(async (args) => (await run(["git", "--git-dir", gitDir, ...args], { timeoutMs: 60_000, what: `Cannot list the refs of ${gitDir}` })).stdout);

/**
 * Fetch the mirror of `repo` from upstream: its refs become upstream's (--prune drops
 * those upstream no longer has, each recorded as deleted upstream: deleted.ts). `env` is
 * laid over the upstream's environment (the push hook takes receive-pack's quarantine out
 * of it); `allowedRefs` is the push policy's, the names whose delete records are read.
 */
export async function fetchMirror(o: { repo: Repo; dirs: GateDirs; allowedRefs: string[]; env?: Record<string, string | undefined> }): Promise<void> {
  const before = await refsOf(o.repo.dir);
  // The mirror keeps the URL it was cloned from; a resumed bottle's config may name another
  // (the upstream moved, ssh instead of https), and the hook pushes to the config's.
  await run(["git", "--git-dir", o.repo.dir, "remote", "set-url", "origin", o.repo.url], {
    timeoutMs: 60_000,
    what: `Cannot point the mirror of ${o.repo.key} at ${redactUrl(o.repo.url)}`,
  });
  try {
    await run(["git", "--git-dir", o.repo.dir, "fetch", "--prune", "--quiet", "origin"], {
      env: { ...upstreamEnv(o.repo.upstream, o.dirs), ...o.env },
      timeoutMs: 300_000,
      what: `Cannot fetch ${o.repo.key} from ${redactUrl(o.repo.url)}`,
    });
  } finally {
    // A fetch that failed may have pruned already.
    await recordPruned(o.repo.dir, { before, after: await refsOf(o.repo.dir), allowedRefs: o.allowedRefs });
  }
}

export interface Registry {
  readonly repos: ReadonlyMap<string, Repo>;
  /** The repo a request path names, or a reason to refuse it. */
  lookup(path: string): { ok: true; repo: Repo } | { ok: false; reason: string };
  /** Create the mirror if needed, then fetch from upstream, in the repo's turn (turns.ts). */
  sync(repo: Repo): Promise<void>;
  /**
   * sync() for a fetch session, unless a push holds the repo's turn or waits for it and
   * the mirror exists: then the fetch is served the mirror as it stands (the push brings
   * it to upstream's refs when it ends) instead of waiting up to a whole push session.
   * A sync already running is shared. Whether it synced.
   */
  syncUnlessPushing(repo: Repo): Promise<boolean>;
  /** Take the repo's turn for a push's receive-pack: no sync runs until the function returned is called. */
  receive(repo: Repo): Promise<() => void>;
  /** Whether a push holds the repo's turn or waits for it: a sync now waits for that push to end. */
  pushing(repo: Repo): boolean;
}

interface RegistryOptions {
  /** How long sync() and receive() wait for the repo's turn before they give up (BbError BUSY); default without end. */
  turnWaitMs?: number;
}

/** Build the registry; throws CONFIG for a repo without upstream or a missing identity. */
export function createRegistry(config: GitGateConfig, dirs: GateDirs, opts: RegistryOptions = {}): Registry {
  const repos = new Map<string, Repo>();
  for (const declared of config.repos) {
    const key = normalizeRepoPath(declared);
    if (!key) throw new BbError("CONFIG", `Repo ${JSON.stringify(declared)} is not "<host>/<owner>/<repo>"`);
    const host = key.split("/")[0]!;
    const upstream = config.upstreams.find((u) => u.host === host);
    if (!upstream) throw new BbError("CONFIG", `Repo ${key} has no upstream for host ${host}`);
    if (upstream.identity) {
      if (!dirs.identities) throw new BbError("CONFIG", `Upstream ${host} names identity ${upstream.identity} but no --identities dir was given`);
      if (!existsSync(join(dirs.identities, upstream.identity))) {
        throw new BbError("CONFIG", `Identity ${upstream.identity} for ${host} is not in ${dirs.identities}`);
      }
    }
    if (upstream.hostKeys) {
      const lines = upstream.hostKeys.map((k) => `${keyAlias(upstream)} ${k}\n`).join("");
      mkdirSync(dirs.data, { recursive: true });
      writeFileSync(pinnedKnownHosts(upstream, dirs), lines, { mode: 0o600 });
    }
    const rest = key.slice(host.length + 1);
    repos.set(key, { key, upstream, url: joinUrl(upstream.url, rest), dir: join(dirs.data, "repos", `${key}.git`) });
  }

  const inFlight = new Map<string, Promise<void>>();
  /** Repo keys whose sync in inFlight has its turn (the others wait for theirs). */
  const syncing = new Set<string>();
  const turns = createTurns();
  const takeTurn = async (repo: Repo) => {
    try {
      return await turns.take(repo.key, opts.turnWaitMs);
    } catch (e) {
      if (!(e instanceof BbError && e.code === "BUSY")) throw e;
      throw new BbError("BUSY", `waited ${opts.turnWaitMs! / 1000}s for the push (or fetch from upstream) in progress at ${repo.key} to end; try again when it has`, { cause: e });
    }
  };
  /** Per repo key, the pushes holding or waiting for its turn. */
  const pushes = new Map<string, number>();
  const countPush = (key: string, by: number) => {
    const n = (pushes.get(key) ?? 0) + by;
    if (n) pushes.set(key, n);
    else pushes.delete(key);
  };

  async function doSync(repo: Repo): Promise<void> {
    if (existsSync(join(repo.dir, "HEAD"))) return fetchMirror({ repo, dirs, allowedRefs: config.push.allowedRefs });
    const env = upstreamEnv(repo.upstream, dirs);
    const what = `Cannot fetch ${repo.key} from ${redactUrl(repo.url)}`;
    // Clone beside the final place and rename, so a failed clone leaves no half mirror.
    await mkdir(dirname(repo.dir), { recursive: true });
    const tmp = `${repo.dir}.tmp-${process.pid}-${Date.now()}`;
    try {
      await run(["git", "clone", "--mirror", "--quiet", repo.url, tmp], { env, timeoutMs: 600_000, what });
      await rename(tmp, repo.dir);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  function sync(repo: Repo): Promise<void> {
    // Sessions that arrive while a sync runs share it instead of fetching again.
    const running = inFlight.get(repo.key);
    if (running) return running;
    const p = (async () => {
      const end = await takeTurn(repo);
      syncing.add(repo.key);
      try {
        await doSync(repo);
      } finally {
        syncing.delete(repo.key);
        end();
      }
    })().finally(() => inFlight.delete(repo.key));
    inFlight.set(repo.key, p);
    return p;
  }

  return {
    repos,
    lookup(path) {
      const key = normalizeRepoPath(path);
      const repo = key ? repos.get(key) : undefined;
      if (repo) return { ok: true, repo };
      const served = [...repos.keys()].join(", ") || "nothing";
      return { ok: false, reason: `repository ${key ?? JSON.stringify(path)} is not declared for this bottle (git-gate serves: ${served})` };
    },
    sync,
    async syncUnlessPushing(repo) {
      if (pushes.has(repo.key) && !syncing.has(repo.key) && existsSync(join(repo.dir, "HEAD"))) return false;
      await sync(repo);
      return true;
    },
    async receive(repo) {
      countPush(repo.key, 1);
      const end = await takeTurn(repo).catch((e: unknown) => {
        countPush(repo.key, -1);
        throw e;
      });
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        countPush(repo.key, -1);
        end();
      };
    },
    pushing: (repo) => pushes.has(repo.key),
  };
}
