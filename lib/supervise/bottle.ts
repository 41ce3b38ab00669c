// From a bottle's plan to what the operator's decisions act on: its queue dir, its
// firewall policy file, and how to make its running firewall re-read that policy.
import { setTimeout as sleep } from "node:timers/promises";
import { BbError } from "../errors.ts";
import { log } from "../log.ts";
import type { Plan } from "../plan/schema.ts";
import { ANY_EXIT, run } from "../proc.ts";
import type { ApproveContext } from "./decide.ts";

/**
 * docker kill --signal HUP <bundle>: the bundle's init passes it to the firewall (and
 * egress), which re-read their files live, so no connection through them drops and every
 * daemon stays up. Both backends run the bundle as a docker container.
 */
export function dockerFirewallReload(plan: Plan): () => Promise<void> {
  return async () => {
    if (!plan.bundle) {
      log.warn(`bottle ${plan.slug} has no running bundle in its plan: the firewall reads the new policy when the bundle starts`);
      return;
    }
    const container = plan.bundle.container;
    const since = new Date(Date.now() - 1).toISOString();
    await run(["docker", "kill", "--signal", "HUP", container], {
      errorCode: "DOCKER",
      what: `Cannot signal the firewall of ${plan.slug} (container ${container})`,
      timeoutMs: 30_000,
    });
    await firewallReloaded(container, since);
    log.info(`the firewall of ${plan.slug} re-read its policy (container ${container}; open connections stay)`);
  };
}

/**
 * Wait for the firewall's own word that it re-read the policy, so the agent is told
 * "approved" only once the host is open: the signal returns before the firewall acts on
 * it, and a policy it refuses must not be reported as applied.
 */
async function firewallReloaded(container: string, since: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await run(["docker", "logs", "--since", since, container], { expect: ANY_EXIT });
    const lines = `${r.stdout}\n${r.stderr}`.split("\n").filter((l) => l.startsWith("firewall | "));
    if (lines.some((l) => l.includes("policy reloaded"))) return;
    const refused = lines.find((l) => l.includes("policy reload refused"));
    if (refused) throw new BbError("STATE", refused.slice("firewall | ".length));
    if (Date.now() > deadline) throw new BbError("TIMEOUT", `the firewall did not say it re-read its policy within ${timeoutMs / 1000}s (docker logs ${container} shows what it did)`);
    await sleep(50);
  }
}

/** Everything approve/deny/answer need for this bottle. */
export function approveContext(plan: Plan, reloadFirewall = dockerFirewallReload(plan)): ApproveContext {
  const queueDir = plan.files.superviseQueue;
  if (!queueDir) {
    throw new BbError("CONFIG", `Bottle ${plan.slug} (bottle ${plan.bottle.name}) has supervise off, so it has no request queue`);
  }
  return { queueDir, slug: plan.slug, policyFile: plan.files.firewallPolicy, reloadFirewall };
}
