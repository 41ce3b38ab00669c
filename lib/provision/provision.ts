// bb-provision's work: stage the files, run the one provisioning script in the bottle as
// root with the tar on stdin, and check every step. The bottle is reached through a
// Target, so docker and smolvm share everything but the exec.
import { agentUrlsWithKey } from "../bundle/agent-key.ts";
import { BbError } from "../errors.ts";
import { log } from "../log.ts";
import type { Plan } from "../plan/schema.ts";
import { redactCredentials, type RunResult } from "../proc.ts";
import { parseSteps, provisionScript } from "./script.ts";
import { stage } from "./stage.ts";

type Ready = Plan & { bundle: NonNullable<Plan["bundle"]>; vm: NonNullable<Plan["vm"]> };

export interface Target {
  /** Run argv as root in the bottle with the file `input` streamed to stdin; never throws on a non-zero exit. */
  execRoot(argv: string[], input: { file: string }): Promise<RunResult>;
}

/**
 * `bottle` may be a promise of the Target, settled once the bottle may be touched
 * (bb-provision: when the bundle's daemons answer): the files are staged on the host
 * meanwhile, off the start's critical path. When it fails, its error is the one thrown,
 * the staging is removed, and the bottle was never touched.
 */
export async function provision(plan: Ready, bottle: Target | Promise<Target>, opts: { now?: () => Date; agentFiles?: Record<string, string> } = {}): Promise<Plan> {
  log.step(`provision: staging files for ${plan.slug}`);
  // The agent's URLs with the bottle's agent key (smolmachines): only in the staged tar,
  // which reaches the bottle over the exec's stdin, never on a command line.
  const staging = agentUrlsWithKey(plan.bundle).then((urls) => stage(plan, { cwd: plan.cwd, urls, agentFiles: opts.agentFiles }));
  const [done, reached] = await Promise.allSettled([staging, bottle]);
  if (reached.status === "rejected") {
    if (done.status === "fulfilled") await done.value.cleanup();
    throw reached.reason;
  }
  if (done.status === "rejected") throw done.reason;
  const staged = done.value;
  const target = reached.value;
  if (staged.scrubbed.length) {
    log.warn(`provision: credentials removed from the bottle's copy of ${plan.cwd} (its git config files; yours are untouched): ${staged.scrubbed.join("; ")}`);
  }
  try {
    const { script, steps } = provisionScript(plan, { cwd: plan.cwd !== null });
    log.step(`provision: ${steps.join(", ")}`);
    const r = await target.execRoot(["sh", "-c", script], { file: staged.tarFile });
    // What a step printed goes into the plan and the log: without the agent key.
    const stderr = redactCredentials(r.stderr);
    const results = parseSteps(redactCredentials(r.stdout), steps);
    for (const s of results) log.debug(`provision step ${s.name}: ${s.ok ? "ok" : `FAILED ${s.detail ?? ""}`}`);
    const failed = results.filter((s) => !s.ok);
    if (failed.length) {
      const why = failed.map((s) => `${s.name} (${s.detail ?? "no detail"})`).join("; ");
      throw new BbError("PROVISION", `Cannot provision ${plan.slug}: ${why}${stderr.trim() ? `\n${stderr.trim().split("\n").slice(-5).join("\n")}` : ""}`, {
        details: { steps: results },
      });
    }
    return { ...plan, provision: { steps: results, at: (opts.now ?? (() => new Date()))().toISOString() } };
  } finally {
    await staged.cleanup();
  }
}
