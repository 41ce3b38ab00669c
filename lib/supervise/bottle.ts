// From a bottle's plan to what the operator's decisions act on: its queue dir, its
// firewall policy file, and how to make its running firewall re-read that policy.
import { BbError } from "../errors.ts";
import { log } from "../log.ts";
import type { Plan } from "../plan/schema.ts";
import { run } from "../proc.ts";
import type { ApproveContext } from "./decide.ts";

/**
 * docker kill --signal USR1 <bundle>: the bundle's init supervisor restarts the firewall
 * alone, so the agent's supervise session and the other daemons stay up. Both backends
 * run the bundle as a docker container.
 */
export function dockerFirewallRestart(plan: Plan): () => Promise<void> {
  return async () => {
    if (!plan.bundle) {
      log.warn(`bottle ${plan.slug} has no running bundle in its plan: the firewall reads the new policy when the bundle starts`);
      return;
    }
    await run(["docker", "kill", "--signal", "USR1", plan.bundle.container], {
      errorCode: "DOCKER",
      what: `Cannot signal the firewall of ${plan.slug} (container ${plan.bundle.container})`,
      timeoutMs: 30_000,
    });
    log.info(`restarting the firewall of ${plan.slug} (container ${plan.bundle.container})`);
  };
}

/** Everything approve/deny/answer need for this bottle. */
export function approveContext(plan: Plan, restartFirewall = dockerFirewallRestart(plan)): ApproveContext {
  const queueDir = plan.files.superviseQueue;
  if (!queueDir) {
    throw new BbError("CONFIG", `Bottle ${plan.slug} (bottle ${plan.bottle.name}) has supervise off, so it has no request queue`);
  }
  return { queueDir, slug: plan.slug, policyFile: plan.files.firewallPolicy, restartFirewall };
}
