// The agent's environment: the bottle's and agent's env, a placeholder for every routed
// credential (the real one lives only in egress), the proxy, and where the CA is. For
// codex, CODEX_CA_CERTIFICATE points at the system bundle because codex ignores the store.
import { AGENT } from "../layout.ts";
import type { AgentUrls } from "../http/agent-key.ts";
import type { Plan } from "../plan/schema.ts";

type WithBundle = Plan & { bundle: NonNullable<Plan["bundle"]> };

export function agentEnv(plan: WithBundle): Record<string, string> {
  const env: Record<string, string> = { ...plan.bottle.env, ...plan.agent.env };
  for (const r of plan.bottle.egress) env[r.agentEnv] = r.placeholder;
  return Object.assign(env, ownEnv(plan));
}

/** What bot-bottle sets itself, over any declared name: HOME, the proxy, the CA, BB_*. */
function ownEnv(plan: WithBundle): Record<string, string> {
  const noProxy = ["localhost", "127.0.0.1", "git-gate", "supervise"];
  if (plan.bundle.loopbackAddr && !noProxy.includes(plan.bundle.loopbackAddr)) noProxy.push(plan.bundle.loopbackAddr);
  return {
    HOME: AGENT.home,
    USER: AGENT.user,
    NO_PROXY: noProxy.join(","),
    no_proxy: noProxy.join(","),
    NODE_EXTRA_CA_CERTS: AGENT.caFile,
    CODEX_CA_CERTIFICATE: AGENT.caBundle,
    BB_SLUG: plan.slug,
    ...bundleUrlEnv(plan.bundle.agentUrls),
  };
}

/** The names bundleUrlEnv() sets. */
export const BUNDLE_URL_VARS = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "BB_GIT_GATE_URL", "BB_SUPERVISE_URL"] as const;

/**
 * The variables that point the agent at the bundle's daemons. On smolmachines their
 * values carry the bottle's agent key, and smolvm takes a guest's environment only on its
 * command line: there the VM is made without them (machineEnv), and bb-provision writes
 * them, keyed, into AGENT.bundleEnv, which every command bot-bottle runs in the VM reads.
 */
function bundleUrlEnv(urls: AgentUrls): Record<string, string> {
  const env: Record<string, string> = { HTTP_PROXY: urls.proxy, HTTPS_PROXY: urls.proxy, http_proxy: urls.proxy, https_proxy: urls.proxy };
  if (urls.gitGate) env.BB_GIT_GATE_URL = urls.gitGate;
  if (urls.supervise) env.BB_SUPERVISE_URL = urls.supervise;
  return env;
}

/** The smolvm machine's own environment: the agent's without the bundle's URLs, declared
 * values of those names included (AGENT.bundleEnv sets them). */
export function machineEnv(plan: WithBundle): Record<string, string> {
  const env = agentEnv(plan);
  for (const name of BUNDLE_URL_VARS) delete env[name];
  return env;
}

/** AGENT.bundleEnv's text: one `export NAME='value'` line each, for sh's `.`. */
export function bundleEnvScript(urls: AgentUrls): string {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  return Object.entries(bundleUrlEnv(urls)).map(([k, v]) => `export ${k}=${q(v)}\n`).join("");
}

/** sh that reads AGENT.bundleEnv when it is there (bb-provision writes it into a smolvm
 * machine; before that, and in docker, there is none), then runs "$@". A file there that
 * cannot be read fails the command rather than running it without the proxy. */
export const WITH_BUNDLE_ENV = `if [ -e ${AGENT.bundleEnv} ]; then . ${AGENT.bundleEnv}; fi; exec "$@"`;

/** The image's PATH: root's commands never search the bottle's. */
const ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** How a command runs as root in the agent: `env` for docker's or smolvm's `-e`, then
 * `wrap(argv)` as the command (which, with `bundleEnv`, reads AGENT.bundleEnv first). */
export interface RootExec {
  env: Record<string, string>;
  wrap(argv: string[]): string[];
}

/**
 * Root's commands in the agent (bb-provision's script, `bb-vm exec --root`) run in the
 * container's environment minus every name the bottle or agent declared (placeholders'
 * names too). A declared PATH
 * or LD_PRELOAD pointing into a skill or the checkout would otherwise run that code as
 * root: provisioning unpacks both before its chown. What bot-bottle sets itself (the
 * proxy, the CA) stays, so `apt-get` as root still goes through the firewall. The
 * loader's names are emptied on the engine's side as well: they act on /usr/bin/env
 * itself, before it can drop them (a bottle made before they were refused has them).
 */
export function rootExec(plan: Plan, opts: { bundleEnv?: boolean } = {}): RootExec {
  const env: Record<string, string> = { PATH: ROOT_PATH, HOME: "/root", LD_PRELOAD: "", LD_LIBRARY_PATH: "", LD_AUDIT: "" };
  // A plan with an agent has its bundle; without one there is nothing of bot-bottle's to keep.
  const own = plan.bundle ? ownEnv(plan as WithBundle) : {};
  const declared = [...new Set([...Object.keys({ ...plan.bottle.env, ...plan.agent.env }), ...plan.bottle.egress.map((r) => r.agentEnv)])].filter((n) => !Object.hasOwn(own, n) && !Object.hasOwn(env, n));
  const unset = declared.flatMap((n) => ["-u", n]);
  // The file is read after the declared names are gone: a declared BASH_ENV or ENV would
  // otherwise run its code in the shell that reads it, as root.
  const script = opts.bundleEnv ? WITH_BUNDLE_ENV : 'exec "$@"';
  return { env, wrap: (argv) => ["/usr/bin/env", ...unset, "USER=root", "LOGNAME=root", "/bin/sh", "-c", script, "sh", ...argv] };
}
