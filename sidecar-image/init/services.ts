// What init runs for each daemon and with which environment. The argv table holds the
// in-container paths bb-bundle mounts things at (lib/layout.ts, shared with bb-bundle);
// tests replace it (BB_INIT_ARGV) to run fakes or real daemons on loopback ports.
import { z } from "zod/v3";
import { BLOCKED_FILE } from "../../lib/blocked-record.ts";
import { BbError } from "../../lib/errors.ts";
import { BUNDLE_PATHS, CA_KEY_ENV, GIT_GATE_DATA, IDENTITY_ENV_PREFIX, PORTS } from "../../lib/layout.ts";
import { Service } from "../../lib/plan/schema.ts";
import { AGENT_KEY_ENV } from "../../lib/http/agent-key.ts";

export type { Service };
export const SERVICES = Service.options;

interface TableContext {
  /** Where the bundled daemons live (BB_SIDECAR_DIR, default /opt/bb/sidecar). */
  sidecarDir: string;
  /** The bottle's slug (BB_SLUG); only supervise needs it. */
  slug: string | undefined;
  /** The daemons this bundle runs: the firewall hands traffic to egress only when it runs. */
  services: readonly Service[];
  /** BB_UPSTREAM_CA: an extra CA for whichever daemon dials the upstreams (test upstreams). */
  upstreamCa: string | undefined;
  /** BB_LOOPBACK_ADDR, smolmachines only: the host address the agent-facing ports are
   * published on, by which the agent reaches supervise (on docker it uses the name "supervise"). */
  loopbackAddr?: string;
  /** git-gate's data folder: GIT_GATE_DATA in the bottle's volume unless init runs every
   * daemon as itself (no BB_DAEMON_IDS: by hand), when it is the image's (main.ts). */
  gitGateData?: string;
}

// Who else could connect, and how each agent-facing daemon keeps them out. Without a
// loopback address the bundle is docker's, whose egress network the host reaches: refused
// by interface. On host loopback any local user connects: only the agent has the key.
const agentSide = (ctx: TableContext) => (ctx.loopbackAddr === undefined ? ["--agent-network-only"] : ["--require-agent-key"]);

function daemonArgs(name: Service, ctx: TableContext): string[] {
  const extraCa = (flag: string) => (ctx.upstreamCa ? [flag, ctx.upstreamCa] : []);
  switch (name) {
    case "firewall":
      return [
        "--listen", `0.0.0.0:${PORTS.firewall}`,
        ...agentSide(ctx),
        "--policy", `${BUNDLE_PATHS.firewall}/policy.json`,
        "--ca-cert", `${BUNDLE_PATHS.ca}/ca.pem`,
        "--ca-key-env", CA_KEY_ENV,
        "--blocked-record", `${BUNDLE_PATHS.firewallBlocked}/${BLOCKED_FILE}`,
        // bb-prepare runs egress only for bottles with credential routes; without it the
        // firewall dials the upstreams itself.
        ...(ctx.services.includes("egress") ? ["--next-hop", `127.0.0.1:${PORTS.egress}`] : extraCa("--upstream-ca")),
      ];
    case "egress":
      return ["--listen", `127.0.0.1:${PORTS.egress}`, "--routes", `${BUNDLE_PATHS.egress}/routes.json`, ...extraCa("--extra-ca")];
    case "git-gate":
      return [
        "--listen", `0.0.0.0:${PORTS.gitGate}`,
        ...agentSide(ctx),
        "--config", `${BUNDLE_PATHS.gitGate}/config.json`,
        "--hooks", `${BUNDLE_PATHS.gitGate}/hooks`,
        "--data", ctx.gitGateData ?? GIT_GATE_DATA,
        "--identities-env", IDENTITY_ENV_PREFIX,
      ];
    case "supervise":
      if (!ctx.slug) throw new BbError("CONFIG", "BB_SLUG is not set: supervise needs the bottle's slug (bb-bundle sets it)");
      return [
        "--listen", `0.0.0.0:${PORTS.supervise}`,
        ...agentSide(ctx),
        "--queue", `${BUNDLE_PATHS.supervise}/queue`,
        "--slug", ctx.slug,
        // supervise holds an approval back until the restarted firewall listens again.
        "--firewall", `127.0.0.1:${PORTS.firewall}`,
        // The one Host it answers: the name or address in the agent's BB_SUPERVISE_URL.
        "--allowed-host", ctx.loopbackAddr ?? "supervise",
      ];
  }
}

/** The argv that starts `name` in the bundle image. */
export function defaultArgv(name: Service, ctx: TableContext): string[] {
  return ["node", `${ctx.sidecarDir}/${name}.js`, ...daemonArgs(name, ctx)];
}

const ArgvOverride = z.record(Service, z.array(z.string()).min(1));
type ArgvOverride = z.infer<typeof ArgvOverride>;

/** Parse BB_INIT_ARGV / --argv-json: {"firewall": ["node", "fake.js", ...], ...}. */
export function parseArgvOverride(text: string | undefined): ArgvOverride {
  if (!text) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new BbError("USAGE", `the argv override is not JSON: ${(e as Error).message}`);
  }
  const r = ArgvOverride.safeParse(value);
  if (!r.success) throw new BbError("USAGE", `the argv override wants {"<service>": ["cmd", ...]} for ${SERVICES.join(", ")}: ${r.error.issues[0]!.message}`);
  return r.data;
}

/** Parse BB_SERVICES / --services ("firewall,egress"); duplicates collapse, order is kept. */
export function parseServices(text: string): Service[] {
  const names = text.split(",").map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(SERVICES as readonly string[]).includes(n));
  if (unknown.length) throw new BbError("USAGE", `unknown service ${unknown.map((n) => JSON.stringify(n)).join(", ")} in the service list; known: ${SERVICES.join(", ")}`);
  return [...new Set(names as Service[])];
}

/** Variables every daemon gets: what a node process and git need to run, nothing secret. */
const BASIC = new Set(["PATH", "HOME", "USER", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM", "HOSTNAME", "SSL_CERT_FILE", "SSL_CERT_DIR", "BB_SLUG", "BB_LOG_LEVEL"]);
const BASIC_PREFIXES = ["LC_", "NODE_"];

/**
 * Secrets go only where they are used: the real credentials (EGRESS_TOKEN_*) to egress,
 * which injects them; the bottle CA's key (BB_CA_KEY) to the firewall, which mints the
 * intercepted leaves with it; the upstreams' SSH identities (BB_GIT_IDENTITY_*) to git-gate,
 * which fetches and pushes with them; the values DLP must catch (BB_SENSITIVE_*) to the two scanners;
 * the bottle's agent key (BB_AGENT_KEY, smolmachines) to the three agent-facing daemons.
 * The original handed every daemon the whole environment and its scanner then flagged
 * the very credentials egress had injected.
 */
const SECRET_PREFIXES: Record<Service, string[]> = {
  firewall: ["BB_SENSITIVE_", AGENT_KEY_ENV, CA_KEY_ENV],
  egress: ["EGRESS_TOKEN_"],
  "git-gate": ["BB_SENSITIVE_", AGENT_KEY_ENV, IDENTITY_ENV_PREFIX],
  supervise: [AGENT_KEY_ENV],
};

/** The environment for `name`, built from an allowlist over init's own environment. */
export function envFor(name: Service, env: Record<string, string | undefined>): Record<string, string> {
  const prefixes = [...BASIC_PREFIXES, ...SECRET_PREFIXES[name]];
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (BASIC.has(k) || prefixes.some((p) => k.startsWith(p))) out[k] = v;
  }
  return out;
}
