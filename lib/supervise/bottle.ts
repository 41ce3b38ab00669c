// From a bottle's plan to what the operator's decisions act on: its queue dir, its
// firewall policy file, and how to make its running firewall re-read that policy.
import { lstatSync } from "node:fs";
import { BbError, isBbError } from "../errors.ts";
import { log } from "../log.ts";
import type { Plan } from "../plan/schema.ts";
import { boundedCallMs, boundedDocker } from "../docker/cmd.ts";
import { ANY_EXIT } from "../proc.ts";
import { BUNDLE_DOWN, type ApproveContext } from "./decide.ts";
import { firewallAnswer, logSince } from "./reload-answer.ts";

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
    const before = await logSince(container, since);
    await signal("HUP");
    const mostMs = boundedCallMs();
    const answer = await firewallAnswer(container, since, before, {
      quietMs: 5_000,
      mostMs,
      onBusy: (n) => log.info(`the firewall of ${plan.slug} is busy (${n} lines in its log since the signal) and has not said yet that it re-read its policy: waiting up to ${mostMs / 1000} s`),
    });
    if (answer.reloaded) {
      log.info(`the firewall of ${plan.slug} re-read its policy (container ${container}; open connections stay)`);
      return;
    }
    log.warn(
      answer.lines > 0
        ? `the firewall of ${plan.slug} did not say it re-read its policy within ${mostMs / 1000} s, while it logged ${answer.lines} lines (is the agent flooding it?): restarting it instead, which drops the connections through it`
        : `the firewall of ${plan.slug} did not say it re-read its policy (a bundle from an older bot-bottle?): restarting it instead, which drops the connections through it`,
    );
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

/** Everything approve/deny/answer need for this bottle. */
export function approveContext(plan: Plan): ApproveContext {
  const queueDir = plan.files.superviseQueue;
  if (!queueDir) {
    throw new BbError("CONFIG", `Bottle ${plan.slug} (bottle ${plan.bottle.name}) has supervise off, so it has no request queue`);
  }
  // A bundle from before the queue was mounted alone could swap the folder for a symlink;
  // bb-supervise writes there, and must not be led elsewhere on the host.
  if (lstatSync(queueDir, { throwIfNoEntry: false })?.isSymbolicLink()) {
    throw new BbError("STATE", `The supervise queue of ${plan.slug}, ${queueDir}, is a symlink, which bot-bottle never makes: something in the bundle replaced it. Not following it; remove the bottle (bb-cleanup --slug ${plan.slug})`);
  }
  return { queueDir, slug: plan.slug, policyFile: plan.files.firewallPolicy, bottleDir: plan.files.dir, reloadFirewall: dockerFirewallReload(plan) };
}
