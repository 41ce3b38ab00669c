// The bottle's agent key, for bundles whose agent-facing ports sit on host loopback
// (smolmachines): every process of every local user can connect there, so each port
// serves only a client that shows the key, which only the bottle's agent is given, in
// the URLs bb-bundle writes into its plan. The firewall takes it as the proxy password
// (HTTPS_PROXY=http://bb:KEY@addr:port), git-gate and supervise as the first segment of
// the path (git://addr:port/KEY/host/owner/repo, http://addr:port/KEY/mcp). It keeps
// nothing from the agent, which has it: it keeps everyone else out.
import { Buffer } from "node:buffer";
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import process from "node:process";
import { BbError } from "../errors.ts";

/** Where init hands the key to the agent-facing daemons (never on their argv, which the
 * host's process list shows to every user). */
export const AGENT_KEY_ENV = "BB_AGENT_KEY";

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

/** The key from init's environment, for a daemon started with --require-agent-key. */
export function agentKeyFromEnv(daemon: string, env: Record<string, string | undefined> = process.env): string {
  const key = env[AGENT_KEY_ENV];
  if (!key || key.length < 32) {
    throw new BbError("CONFIG", `${daemon} --require-agent-key: $${AGENT_KEY_ENV} is ${key ? "shorter than 32 characters" : "not set"} (bb-bundle sets it for a bundle on host loopback)`);
  }
  return key;
}
