// What to tell someone whose session ended because the bottle's agent container went away:
// what happened to the bottle, and the one next step that still works.
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { ownerAlive, readOwner } from "../inventory/owner.ts";

/** What scripts/flow.sh's teardown makes in the bottle's state dir before it removes the
 * bottle, so the session it ends does not blame someone else (kept in step with flow.sh). */
export const TEARING_DOWN_FILE = "flow/tearing-down";

/**
 * The error line for a bottle whose agent container `gone` ("is gone", "is being removed", "is stopped").
 *
 * A live owner record means a start flow is tearing the bottle down: its own agent's
 * session ended with the container (or it was killed), and that flow's teardown removes
 * the state dir too, so offering a rebuild would point at something about to vanish (a
 * session attached beside that flow's agent ends exactly then). Read before the state dir
 * is looked at: the teardown removes the record only with the dir, and its flow outlives both.
 * Unless that flow is our parent (`parentPid`): then this is its own agent's session,
 * whose container something outside the flow removed or stopped (docker rm, bb-cleanup
 * --slug, an engine restart), and the flow's teardown is still to come.
 * Without one, a rebuild is offered only while the saved plan it rebuilds from is there.
 * Null when that flow is tearing the bottle down itself (TEARING_DOWN_FILE).
 */
export async function goneMessage(
  plan: { slug: string; agent: { name: string }; files: { dir: string; plan: string }; vm: { name: string } },
  gone: string,
  opts: { parentPid?: number } = {},
): Promise<string | null> {
  const what = `bottle ${plan.slug}: its agent container ${plan.vm.name} ${gone}`;
  const fresh = `\`just start agent=${plan.agent.name}\` starts a new one`;
  const owner = await readOwner(plan.files.dir);
  if (owner && ownerAlive(owner)) {
    if (owner.pid === (opts.parentPid ?? process.ppid)) {
      // Our own flow's teardown (a Ctrl-C, a kill of the flow), which says so itself.
      if (existsSync(join(plan.files.dir, TEARING_DOWN_FILE))) return null;
      const by = gone === "is stopped" ? "docker stop or kill, or the Docker engine restarted" : `docker rm, or bb-cleanup --slug ${plan.slug}`;
      return `${what}, not by this start flow (${by}); the flow now tears the rest of the bottle down, state dir and all; ${fresh}`;
    }
    return `${what}: the start flow pid ${owner.pid} that owns it is tearing it down, state dir and all, so nothing is left to resume; ${fresh}`;
  }
  if (existsSync(plan.files.plan)) {
    return `${what}; \`just start slug=${plan.slug}\` rebuilds it, \`bb-cleanup --slug ${plan.slug}\` removes it`;
  }
  return `${what}; the bottle was removed (its state dir ${plan.files.dir} is gone): ${fresh}`;
}
