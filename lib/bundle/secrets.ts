// The secret environment of the bundle, read from the host at bundle time and handed to
// docker by NAME (values never on argv, never in the plan): each route's credential in its
// EGRESS_TOKEN_<n> slot (egress only; the init supervisor enforces that), and the values
// of sensitive host env vars in BB_SENSITIVE_<n> (firewall and git-gate, for DLP), except
// a route's own token, which stays in egress's slot alone.
import type { Plan } from "../plan/schema.ts";
import { sensitiveSlots } from "../prepare/files.ts";

interface BundleSecrets {
  env: Record<string, string>;
  /** Human-readable warnings (a route whose host env var is unset). */
  warnings: string[];
}

export function bundleSecrets(plan: Plan, hostEnv: Record<string, string | undefined>, credentials: Record<string, string> = {}): BundleSecrets {
  const env: Record<string, string> = {};
  const warnings: string[] = [];
  for (const r of plan.bottle.egress) {
    const value = credentials[r.slot] ?? hostEnv[r.tokenEnv];
    if (value) env[r.slot] = value;
    else warnings.push(`$${r.tokenEnv} is not set on the host: requests to ${r.host} will get 502 from egress until you set it and restart`);
  }
  // A route's token is never among these (sensitiveSlots): egress's slot is its only copy.
  for (const { name, slot } of sensitiveSlots(plan.bottle)) {
    const value = hostEnv[name];
    if (value) env[slot] = value;
    else warnings.push(`sensitive_env $${name} is not set on the host: its value cannot be checked for (is the name right?)`);
  }
  return { env, warnings };
}
