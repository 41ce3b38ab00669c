// The agent's environment: the bottle's and agent's env, a placeholder for every routed
// credential (the real one lives only in egress), the proxy, and where the CA is. For
// codex, CODEX_CA_CERTIFICATE points at the system bundle because codex ignores the store.
import { AGENT } from "../layout.ts";
import type { Plan } from "../plan/schema.ts";

type WithBundle = Plan & { bundle: NonNullable<Plan["bundle"]> };

export function agentEnv(plan: WithBundle): Record<string, string> {
  const env: Record<string, string> = { ...plan.bottle.env, ...plan.agent.env };
  for (const r of plan.bottle.egress) env[r.agentEnv] = r.placeholder;
  return Object.assign(env, ownEnv(plan));
}

/** What bot-bottle sets itself, over any declared name: HOME, the proxy, the CA, BB_*. */
function ownEnv(plan: WithBundle): Record<string, string> {
  const urls = plan.bundle.agentUrls;
  const env: Record<string, string> = {};
  const noProxy = ["localhost", "127.0.0.1", "git-gate", "supervise"];
  if (plan.bundle.loopbackAddr && !noProxy.includes(plan.bundle.loopbackAddr)) noProxy.push(plan.bundle.loopbackAddr);
  Object.assign(env, {
    HOME: AGENT.home,
    USER: AGENT.user,
    HTTP_PROXY: urls.proxy,
    HTTPS_PROXY: urls.proxy,
    http_proxy: urls.proxy,
    https_proxy: urls.proxy,
    NO_PROXY: noProxy.join(","),
    no_proxy: noProxy.join(","),
    NODE_EXTRA_CA_CERTS: AGENT.caFile,
    CODEX_CA_CERTIFICATE: AGENT.caBundle,
    BB_SLUG: plan.slug,
  });
  if (urls.gitGate) env.BB_GIT_GATE_URL = urls.gitGate;
  if (urls.supervise) env.BB_SUPERVISE_URL = urls.supervise;
  return env;
}

/** The image's PATH: root's commands never search the bottle's. */
const ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** How a command runs as root in the agent: `env` for docker's or smolvm's `-e`, then
 * `wrap(argv)` as the command. */
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
export function rootExec(plan: Plan): RootExec {
  const env: Record<string, string> = { PATH: ROOT_PATH, HOME: "/root", LD_PRELOAD: "", LD_LIBRARY_PATH: "", LD_AUDIT: "" };
  // A plan with an agent has its bundle; without one there is nothing of bot-bottle's to keep.
  const own = plan.bundle ? ownEnv(plan as WithBundle) : {};
  const declared = [...new Set([...Object.keys({ ...plan.bottle.env, ...plan.agent.env }), ...plan.bottle.egress.map((r) => r.agentEnv)])].filter((n) => !Object.hasOwn(own, n) && !Object.hasOwn(env, n));
  const unset = declared.flatMap((n) => ["-u", n]);
  return { env, wrap: (argv) => ["/usr/bin/env", ...unset, "USER=root", "LOGNAME=root", "/bin/sh", "-c", 'exec "$@"', "sh", ...argv] };
}
