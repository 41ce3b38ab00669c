// bb-prepare AGENT: resolve an agent and its bottle from the manifest, write the bottle's
// per-sidecar config files into its state dir, print the preflight summary on stderr and
// the plan (JSON) on stdout. Touches no smolvm, and docker only to ask (by label) whether
// an --identity slug is another state root's bottle, and (--put-back) to have a bundle
// still running re-read the firewall policy put back.
//
//   bb-prepare researcher | bb-bundle | bb-vm | bb-provision
//   bb-prepare researcher --backend smolmachines --cwd . > plan.json
//
// Ctrl-C (SIGINT, SIGTERM) while it prepares, until its plan goes out (the preflight
// summary too), undoes what this run made (a new bottle's folder, its claim of one that was
// there, the copy aside), prints no plan and exits 130; one after the plan is out changes
// nothing, says so, and the exit stays 0.
//
// Exit codes: see --help (0 ok, 2 usage, 4 invalid manifest, 1 other failure, 130 interrupted).
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createProgram, interruptSignal, lastStop, mainOf, Option, writePlan } from "../../lib/cli.ts";
import { BbError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { refuseSlugElsewhere } from "../../lib/inventory/taken.ts";
import { bottleDir, stateRootFrom, repoRoot } from "../../lib/paths.ts";
import { putBack, refuseLiveFlowsCopy } from "../../lib/prepare/before.ts";
import { runsUnder } from "../../lib/inventory/ancestry.ts";
import { checkSlug } from "../../lib/prepare/slug.ts";
import { prepare } from "../../lib/prepare/prepare.ts";
import { preflightText } from "../../lib/prepare/preflight.ts";
import { linkedGitDir } from "../../lib/provision/linked-git.ts";
import { readSavedPlan } from "../../lib/plan/io.ts";
import { readApprovals } from "../../lib/supervise/approvals.ts";
import { dockerFirewallReload } from "../../lib/supervise/bottle.ts";
import { agentRunning } from "../../lib/vm/running.ts";
import type { Backend } from "../../lib/plan/schema.ts";

const program = createProgram("bb-prepare", "Resolve an agent and its bottle into a plan (JSON on stdout); write the bottle's sidecar config files.", {
  example: "bb-prepare researcher | jq .slug",
  readsManifest: true,
  docker: true,
})
  // Optional to commander only: --put-back alone takes none (checked in the action).
  .usage("[options] <agent>\n       bb-prepare --put-back --identity SLUG --owner-pid PID [--state-dir DIR]")
  .argument("[agent]", "agent name: a file bottles/agents/<agent>.md in the manifest dir")
  .addOption(new Option("--backend <backend>", "where the agent runs").choices(["docker", "smolmachines"]).default("docker"))
  .option("--cwd <dir>", "host checkout to copy into the bottle (by bb-provision)")
  .option("--identity <slug>", "resume: keep this slug (and its state dir, with the hosts approved for it); refused (code SLUG_TAKEN, exit 1) when another state root's bottle has it on this Docker engine")
  .option("--rebuild", "with --identity: the bottle's old containers are being replaced (just start slug= does this); without it a bottle that was started is refused, and with it one whose agent still runs")
  .option("--manifest-dir <dir>", "manifest tree to read (default: $BB_MANIFEST_DIR, else bottles/ of this checkout)")
  .option("--state-dir <dir>", "state root for all bottles (default: $BB_STATE_DIR, else $XDG_STATE_HOME/bot-bottle)")
  .option("--owner-pid <pid>", "claim the bottle for PID, the start flow that owns it (bb-cleanup leaves it alone while PID lives); refused (code BUSY, exit 1) while another live process holds it, as is an --identity without it")
  .option("--copy-before", "with --identity and --owner-pid: a y/N follows (the start flow asks for this), so what is rewritten in a folder that is there is copied aside first, to flow/before.PID, for --put-back at a \"n\" (or the next rebuild once PID is gone) to put back")
  .option("--put-back", "with --identity and --owner-pid, no agent: put the bottle's folder back from flow/before.PID as it was before that flow's bb-prepare (hosts approved since stay in its policy, which a bundle still running re-reads), and remove the copy; says so when there is no copy; the start flow does this at a \"n\" or Ctrl-C (while flow PID runs, only its own teardown may: refused otherwise, code BUSY, exit 1)")
  .action(async (agent: string | undefined, o: { backend: Backend; cwd?: string; identity?: string; rebuild?: boolean; manifestDir?: string; stateDir?: string; ownerPid?: string; copyBefore?: boolean; putBack?: boolean }) => {
    if (o.rebuild && o.identity === undefined) throw new BbError("USAGE", "--rebuild replaces a bottle's containers under its slug: it needs --identity SLUG");
    const ownerPid = o.ownerPid === undefined ? null : Number(o.ownerPid);
    if (ownerPid !== null && !(Number.isInteger(ownerPid) && ownerPid > 0)) throw new BbError("USAGE", `--owner-pid "${o.ownerPid}" is not a process id`);
    if (o.putBack) {
      if (agent !== undefined || o.identity === undefined || ownerPid === null) throw new BbError("USAGE", "--put-back takes --identity SLUG and --owner-pid PID, and no agent");
      const dir = bottleDir(stateRootFrom(o.stateDir), checkSlug(o.identity));
      await refuseLiveFlowsCopy(dir, ownerPid, runsUnder);
      if (await putBack(dir, ownerPid, { reloadFirewall })) log.info(`bb-prepare: put ${dir} back as it was before the rebuild`);
      else log.info(`bb-prepare: nothing to put back in ${dir}: there is no copy flow/before.${ownerPid} (that flow's bb-prepare made none, or it was put back or removed already)`);
      return;
    }
    if (o.copyBefore && (o.identity === undefined || ownerPid === null)) throw new BbError("USAGE", "--copy-before copies a bottle's folder aside for its start flow: it needs --identity SLUG and --owner-pid PID");
    if (agent === undefined) throw new BbError("USAGE", "missing required argument 'agent' (a file bottles/agents/AGENT.md in the manifest dir)");
    // A Ctrl-C from here until the plan goes out undoes what this run made (prepare's
    // rollback) and exits 130.
    const signal = interruptSignal();
    const plan = await prepare({
      signal,
      agent,
      backend: o.backend,
      cwd: o.cwd ?? null,
      identity: o.identity ?? null,
      rebuild: o.rebuild ?? false,
      manifestDir: o.manifestDir ?? (process.env.BB_MANIFEST_DIR || join(repoRoot(), "bottles")),
      stateRoot: stateRootFrom(o.stateDir),
      ownerPid,
      copyBefore: o.copyBefore ?? false,
      reloadFirewall,
      refuseSlug: (slug, stateRoot) => refuseSlugElsewhere({ slug, stateRoot, engineOptional: true }),
      agentRunning,
      hostCredentials: { home: homedir(), env: process.env },
      handOver: async (plan) => {
        const linked = plan.cwd === null ? null : await linkedGitDir(plan.cwd);
        log.raw(preflightText(plan, process.env, { approved: await readApprovals(plan.files.dir), linkedGitDir: linked?.commonDir ?? null }));
        await lastStop(signal, handedTo(plan.slug, ownerPid));
      },
    });
    // Outside the rollback: a reader gone before the plan is written leaves the bottle
    // (writePlan says so and how to remove it).
    await writePlan(plan);
  });

/** What a signal after the plan went out is told: the bottle is no longer this run's. */
function handedTo(slug: string, ownerPid: number | null): string {
  if (ownerPid !== null) return `the plan went out on stdout to the start flow (pid ${ownerPid}), whose bottle ${slug} is now`;
  return `the plan went out on stdout, so bottle ${slug} stays as prepared (bb-cleanup --slug ${slug} removes it)`;
}

/** The put-back's reload: the bundle the plan put back names, which may still run (its
 * agent stopped; a running agent's bottle is never rebuilt). Without one, none ever started. */
async function reloadFirewall(dir: string): Promise<void> {
  const path = join(dir, "plan.json");
  if (!existsSync(path)) return;
  const plan = await readSavedPlan(path);
  if (plan.bundle) await dockerFirewallReload(plan)();
}

await mainOf(program);
