// The agent's environment: the bottle's and agent's env, a placeholder for every routed
// credential (the real one lives only in egress), the proxy, and where the CA is. For
// codex, CODEX_CA_CERTIFICATE points at the system bundle because codex ignores the store.
import { AGENT } from "../layout.ts";
import type { Plan } from "../plan/schema.ts";

export function agentEnv(plan: Plan & { bundle: NonNullable<Plan["bundle"]> }): Record<string, string> {
  const urls = plan.bundle.agentUrls;
  const env: Record<string, string> = { ...plan.bottle.env, ...plan.agent.env };
  for (const r of plan.bottle.egress) env[r.agentEnv] = r.placeholder;
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
