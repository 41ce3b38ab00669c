// The bottle's agent key, for bundles whose agent-facing ports sit on host loopback
// (smolmachines): every process of every local user can connect there, so each port
// serves only a client that shows the key, which only the bottle's agent is given, in
// its URLs (keyedAgentUrls). The firewall takes it as the proxy password
// (HTTPS_PROXY=http://bb:KEY@addr:port), git-gate and supervise as the first segment of
// the path (git://addr:port/KEY/host/owner/repo, http://addr:port/KEY/mcp). It keeps
// nothing from the agent, which has it: it keeps everyone else out. So it must reach no
// other user either: never a command line (the host's process list is everyone's), never
// a plan (which a user may save anywhere), never a log. The plan's URLs are without it.
import { Buffer } from "node:buffer";
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import process from "node:process";
import { BbError } from "../errors.ts";

/** Where init hands the key to the agent-facing daemons (never on their argv, which the
 * host's process list shows to every user). */
export const AGENT_KEY_ENV = "BB_AGENT_KEY";

/** A key's shape: what lib/proc.ts hides in what it logs. */
export const AGENT_KEY_PATTERN = /\b[0-9a-f]{48}\b/g;

/** 192 random bits in hex: safe unquoted in URL userinfo and paths. */
export function newAgentKey(): string {
  return randomBytes(24).toString("hex");
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Compared in constant time, whatever their lengths. */
export function isAgentKey(given: string | null | undefined, key: string): boolean {
  return typeof given === "string" && timingSafeEqual(digest(given), digest(key));
}

/** The password of a `Proxy-Authorization: Basic ...` header (any user name), or null. */
export function proxyPassword(header: string | string[] | undefined): string | null {
  const m = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(Array.isArray(header) ? "" : (header ?? ""));
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon === -1 ? null : decoded.slice(colon + 1);
}

export interface AgentUrls {
  proxy: string;
  gitGate: string | null;
  supervise: string | null;
}

/** The agent's URLs (as bb-bundle records them, without the key) with `key` where each
 * daemon looks for it: the proxy's password, the first path segment of git-gate's and
 * supervise's. */
export function keyedAgentUrls(urls: AgentUrls, key: string): AgentUrls {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i;
  const proxy = scheme.exec(urls.proxy);
  if (!proxy || urls.proxy.slice(proxy[0].length).includes("@")) throw new BbError("PLAN_INVALID", `Cannot put the agent key into the proxy URL ${JSON.stringify(urls.proxy)}: expected scheme://host:port without credentials`);
  const supervise = urls.supervise === null ? null : new URL(urls.supervise);
  return {
    proxy: `${proxy[0]}bb:${key}@${urls.proxy.slice(proxy[0].length)}`,
    gitGate: urls.gitGate === null ? null : `${urls.gitGate.replace(/\/$/, "")}/${key}`,
    supervise: supervise === null ? null : `${supervise.origin}/${key}${supervise.pathname}${supervise.search}`,
  };
}

/** The key from init's environment, for a daemon started with --require-agent-key. */
export function agentKeyFromEnv(env: Record<string, string | undefined> = process.env): string {
  const key = env[AGENT_KEY_ENV];
  if (!key || key.length < 32) {
    // No daemon name: its error line starts with it already (createProgram).
    throw new BbError("CONFIG", `--require-agent-key: $${AGENT_KEY_ENV} is ${key ? "shorter than 32 characters" : "not set"} (bb-bundle sets it for a bundle on host loopback)`);
  }
  return key;
}
