// From a bottle's plan to what the operator's decisions act on: its queue dir, its
// firewall policy file, and how to make its running firewall re-read that policy.
import { lstatSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { BbError, isBbError } from "../errors.ts";
import { log } from "../log.ts";
import type { Plan } from "../plan/schema.ts";
import { boundedDocker } from "../docker/cmd.ts";
import { ANY_EXIT } from "../proc.ts";
import { BUNDLE_DOWN, type ApproveContext } from "./decide.ts";

/**
 * docker kill --signal HUP <bundle>: the bundle's init passes it to the firewall (and
 * egress), which re-read their files live, so no connection through them drops and every
 * daemon stays up. The firewall's own word that it did is awaited; without it (a bundle
 * from before this version, whose init sends SIGHUP to egress alone) the firewall is
 * restarted instead (SIGUSR1), which reads the policy as it starts. Both backends run the
 * bundle as a docker container.
 */
export function dockerFirewallReload(plan: Plan): () => Promise<void> {
  return async () => {
    if (!plan.bundle) {
      log.warn(`bottle ${plan.slug} has no running bundle in its plan: the firewall reads the new policy when the bundle starts`);
      return;
    }
    const container = plan.bundle.container;
    const signal = async (sig: string) => {
      try {
        await boundedDocker(["kill", "--signal", sig, container], { what: `Cannot signal the firewall of ${plan.slug} (container ${container})` });
      } catch (e) {
        // No running firewall: nothing live to change (it reads the file when it starts).
        if (isBbError(e) && e.code === "DOCKER" && /no such container|is not running/i.test(String(e.details.stderr ?? ""))) {
          throw new BbError("STATE", e.message, { cause: e, details: { ...e.details, [BUNDLE_DOWN]: true } });
        }
        throw e;
      }
    };
    const since = await lastLogStamp(container);
    const before = await reloadLines(container, since);
    await signal("HUP");
    if (await firewallReloaded(container, since, before)) {
      log.info(`the firewall of ${plan.slug} re-read its policy (container ${container}; open connections stay)`);
      return;
    }
    log.warn(`the firewall of ${plan.slug} did not say it re-read its policy (a bundle from an older bot-bottle?): restarting it instead, which drops the connections through it`);
    await signal("USR1");
  };
}

/** The engine's own time stamp of the bundle's newest log line: reading from there keeps
 * each look short however long the bundle has run, and needs no clock of ours. */
async function lastLogStamp(container: string): Promise<string | null> {
  const r = await boundedDocker(["logs", "--timestamps", "--tail", "1", container], { expect: ANY_EXIT, what: `Cannot read the log of container ${container}` });
  const stamps = `${r.stdout}\n${r.stderr}`.split("\n").map((l) => l.split(" ")[0]!).filter((t) => /^\d{4}-\d\d-\d\dT/.test(t));
  return stamps.sort().at(-1) ?? null;
}

// The firewall's own two reload lines, whole from the start (init's "firewall | " and the
// firewall's own prefix): its other lines quote what the agent sent, so a line that only
// contains these words may be the agent's.
const RELOADED = /^firewall \| firewall: policy reloaded from \//;
const REFUSED = /^firewall \| firewall: (?:error: )?policy reload refused, keeping the previous policy: /;

/** The firewall's reload lines since `since` (counted: two may share a time stamp). */
async function reloadLines(container: string, since: string | null): Promise<string[]> {
  const r = await boundedDocker(["logs", ...(since ? ["--since", since] : []), container], { expect: ANY_EXIT, what: `Cannot read the log of container ${container}` });
  return `${r.stdout}\n${r.stderr}`.split("\n").filter((l) => RELOADED.test(l) || REFUSED.test(l));
}

/**
 * Wait for the firewall's own word that it re-read the policy, so the agent is told
 * "approved" only once the host is open: the signal returns before the firewall acts on
 * it, and a policy it refuses must not be reported as applied. False when it says nothing.
 */
async function firewallReloaded(container: string, since: string | null, before: string[], timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const fresh = (await reloadLines(container, since)).slice(before.length);
    if (fresh.some((l) => RELOADED.test(l))) return true;
    const refused = fresh.find((l) => REFUSED.test(l));
    if (refused) throw new BbError("STATE", refused.slice("firewall | firewall: ".length));
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}

/** Everything approve/deny/answer need for this bottle. */
export function approveContext(plan: Plan, reloadFirewall = dockerFirewallReload(plan)): ApproveContext {
  const queueDir = plan.files.superviseQueue;
  if (!queueDir) {
    throw new BbError("CONFIG", `Bottle ${plan.slug} (bottle ${plan.bottle.name}) has supervise off, so it has no request queue`);
  }
  // A bundle from before the queue was mounted alone could swap the folder for a symlink;
  // bb-supervise writes there, and must not be led elsewhere on the host.
  if (lstatSync(queueDir, { throwIfNoEntry: false })?.isSymbolicLink()) {
    throw new BbError("STATE", `The supervise queue of ${plan.slug}, ${queueDir}, is a symlink, which bot-bottle never makes: something in the bundle replaced it. Not following it; remove the bottle (bb-cleanup --slug ${plan.slug})`);
  }
  return { queueDir, slug: plan.slug, policyFile: plan.files.firewallPolicy, bottleDir: plan.files.dir, reloadFirewall };
}
