// bb-prepare's work: resolve the agent and its bottle, mint (or keep) the slug, write the
// per-bottle files and return the plan. Pure resolution: no docker, no smolvm. If it
// fails or is interrupted after creating a new bottle dir, it removes that dir, and in a
// folder that was there it gives back its claim and puts back its copy (nothing half-made).
import { existsSync, realpathSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { BbError, isBbError } from "../errors.ts";
import { agentSection, bottleSection, loadAgent } from "../manifest/load.ts";
import { FieldReader } from "../manifest/fields.ts";
import { forwardedCredentials } from "../credentials.ts";
import { linkedGitDir } from "../provision/linked-git.ts";
import { below } from "../provision/pack.ts";
import { claimOwner, refuseHeld, releaseOwner } from "../inventory/owner.ts";
import { bottleDir, makeBottleDir } from "../paths.ts";
import { log } from "../log.ts";
import { readSavedPlan, savePlan } from "../plan/io.ts";
import { PLAN_VERSION, type Backend, type Plan } from "../plan/schema.ts";
import { APPROVALS_FILE, clearReloadOwed, readApprovals, type Approval } from "../supervise/approvals.ts";
import { underDecisionLock } from "../supervise/lock.ts";
import { allowHost } from "../supervise/policy.ts";
import { listRequests, normalizeHost } from "../supervise/queue.ts";
import { beginCopy, dropPart, finishCopy, putBack, putBackLeft, type PutBackOptions } from "./before.ts";
import { servicesFor, writeBottleFiles } from "./files.ts";
import { checkSlug, mintSlug } from "./slug.ts";

interface PrepareOptions {
  agent: string;
  manifestDir: string;
  stateRoot: string;
  backend: Backend;
  cwd: string | null;
  /** Resume: keep this slug (and its createdAt when the bottle exists). */
  identity: string | null;
  /** With identity: the caller replaces the bottle's old containers (the start flow's
   * resume). Without it, a bottle that was started is refused: its files are in use. */
  rebuild?: boolean;
  /** The start flow's pid: it claims the bottle (owner.json) before any file is written,
   * and a bottle another live flow holds is refused (BUSY). */
  ownerPid?: number | null;
  /** With identity and ownerPid: a y/N follows, whose "n" puts the folder back
   * (before.ts), so what is rewritten in a folder that is there is copied aside first.
   * Only the start flow asks: a copy nobody puts back would be put back by a later rebuild. */
  copyBefore?: boolean;
  /** With copyBefore: how a prepare that fails after its copy, and so puts the folder back
   * itself, has a bundle still running re-read the policy put back, as --put-back does
   * (before.ts's PutBackOptions). */
  reloadFirewall?: PutBackOptions["reloadFirewall"];
  /** With identity: throws when the slug cannot be used here (another state root's
   * bottle holds it: lib/inventory/taken.ts), before the bottle's dir is made. */
  refuseSlug?: (slug: string, stateRoot: string) => Promise<void>;
  /** With rebuild: whether the old plan's agent is up (lib/vm/running.ts). A rebuild
   * would rewrite the plan its session is reached by, so a running one is refused. */
  agentRunning?: (old: Plan) => Promise<boolean>;
  /** Where the host's own login is read from (bb-prepare: $HOME and its environment): an
   * agent with forward_host_credentials and no login to forward is refused now, before
   * the y/N, not after it at bb-bundle. */
  hostCredentials?: { home: string; env: Record<string, string | undefined> };
  /** Ctrl-C (lib/cli.ts's interruptSignal): the prepare stops before its next step and
   * undoes what it made, as for a failure. The files are written as one step, so a folder
   * never holds half of them (nor a temp file of one). */
  signal?: AbortSignal;
  /** The caller's last steps before its plan goes out (bb-prepare: the preflight summary,
   * then lib/cli.ts's lastStop), run with the plan saved: what fails or is interrupted
   * there rolls the prepare back as any step's does, so a plan that never went out leaves
   * no bottle behind. */
  handOver?: (plan: Plan) => Promise<void>;
  now?: () => Date;
}

/**
 * The checkout is copied into the bottle whole: with the state root inside it, the copy
 * would carry every bottle's state (their CA keys, git-gate's copies of identity files)
 * into this one; inside the state root, another bottle's. Compared by real paths, the
 * state root's nearest existing folder standing in for one not made yet.
 */
function refuseNested(cwd: string, given: string, stateRoot: string): void {
  let existing = stateRoot;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  const real = realpathSync.native(existing);
  const state = join(real, relative(existing, stateRoot));
  const checkout = realpathSync.native(cwd);
  const inside = (outer: string, inner: string) => inner === outer || below(outer, inner) !== null;
  if (inside(checkout, state)) {
    throw new BbError("USAGE", `--cwd ${given}: the state root ${stateRoot} lies inside it, and the copy would carry every bottle's state (CA keys, identity files) into this one: set BB_STATE_DIR (or --state-dir) outside the checkout`);
  }
  if (inside(state, checkout)) {
    throw new BbError("USAGE", `--cwd ${given}: it lies inside the state root ${stateRoot}, where bottles keep their state (CA keys, identity files): copy a checkout from elsewhere`);
  }
}

export async function prepare(opts: PrepareOptions): Promise<Plan> {
  const manifestDir = resolve(opts.manifestDir);
  const stateRoot = resolve(opts.stateRoot);
  const cwd = opts.cwd === null ? null : resolve(opts.cwd);
  if (cwd !== null && (!existsSync(cwd) || !statSync(cwd).isDirectory())) {
    throw new BbError("USAGE", `--cwd ${opts.cwd}: not a directory`);
  }
  if (cwd !== null) refuseNested(cwd, opts.cwd!, stateRoot);
  // A worktree's .git link that leads nowhere fails now, not after the bottle is started.
  if (cwd !== null) await linkedGitDir(cwd);
  const loaded = await loadAgent(manifestDir, opts.agent);
  // A key file that is not there (or is a folder) fails now, before the y/N, not at
  // bb-bundle or the first fetch.
  for (const u of loaded.bottle.git?.upstreams ?? []) {
    if (!u.identityFile) continue;
    const field = `git.upstreams.${u.host}.identity_file`;
    const r = new FieldReader(loaded.bottle.origin.git ?? loaded.bottle.file);
    if (!existsSync(u.identityFile)) r.fail(field, `${u.identityFile} does not exist`);
    const st = statSync(u.identityFile);
    if (!st.isFile()) r.fail(field, `${u.identityFile} is ${st.isDirectory() ? "a folder" : "no regular file"}: name the private key file itself (e.g. ~/.ssh/id_ed25519)`);
  }

  const agent = agentSection(loaded);
  const bottle = bottleSection(loaded);
  // Read and dropped: bb-bundle reads it again for egress, and the plan never holds it.
  if (opts.hostCredentials) await forwardedCredentials({ agent, bottle }, opts.hostCredentials);

  // Between steps, never inside one: each leaves what it made whole, for the catch below.
  const stopIfAborted = () => opts.signal?.throwIfAborted();
  let slug: string;
  let createdAt = (opts.now ?? (() => new Date()))().toISOString();
  let fresh = true;
  if (opts.identity !== null) {
    slug = checkSlug(opts.identity);
    await opts.refuseSlug?.(slug, stateRoot);
    stopIfAborted();
    const existing = bottleDir(stateRoot, slug);
    if (!(await makeBottleDir(stateRoot, slug))) {
      fresh = false;
      const planPath = `${existing}/plan.json`;
      if (existsSync(planPath)) {
        const old = await readSavedPlan(planPath);
        if (old.agent.name !== opts.agent) {
          throw new BbError("USAGE", `--identity ${slug} belongs to agent "${old.agent.name}", not "${opts.agent}"`);
        }
        if ((old.bundle || old.vm) && !opts.rebuild) {
          throw new BbError(
            "USAGE",
            `Bottle ${slug} was started and not torn down, so its files are in use: \`just start agent=${opts.agent} slug=${slug}\` resumes it (reattaching when it runs, rebuilding it when not), \`bb-cleanup --slug ${slug}\` removes it`,
          );
        }
        if (old.vm && opts.rebuild && (await opts.agentRunning?.(old))) {
          throw new BbError(
            "USAGE",
            `Bottle ${slug} is running (its agent ${old.vm.name} is up), so --rebuild would take its plan from under it: \`just start slug=${slug}\` attaches to it, \`bb-cleanup --slug ${slug}\` removes it (then --rebuild makes it afresh)`,
          );
        }
        createdAt = old.createdAt;
      }
    }
  } else {
    stopIfAborted();
    slug = await mintSlug(opts.agent, stateRoot);
  }

  const dir = bottleDir(stateRoot, slug);
  const services = servicesFor(bottle);
  let claimed = false;
  // The start flow's rebuild of a folder that is there: what is rewritten is copied aside
  // first (before.ts), for a "n" to put back; the owner record before the claim replaces it.
  const copying = !fresh && opts.ownerPid && opts.copyBefore ? opts.ownerPid : null;
  let copied = false;
  try {
    stopIfAborted();
    if (copying) await beginCopy(dir, copying);
    stopIfAborted();
    // Claimed first: of two flows given one slug, the second stops here, before it
    // rewrites a file the first one's bottle reads.
    if (opts.ownerPid) {
      await claimOwner(dir, opts.ownerPid);
      claimed = true;
    }
    stopIfAborted();
    // Read before anything is written: a record that cannot be read fails the prepare
    // with the folder as it was, not half rewritten.
    // A rebuild holds the bottle's decision lock while it rewrites the policy from the
    // approvals: a bb-supervise approve between the two would be lost, or would write back
    // the policy it read before this rewrite.
    const rewrite = async () => {
      if (copying) {
        await finishCopy(dir, copying);
        copied = true;
      } else if (!fresh) {
        // Without a claim of its own, checked here, under the lock a flow's copy is made
        // in: a flow holding the folder puts its copy back over whatever this writes.
        if (!claimed) await refuseHeld(dir);
        await putBackLeft(dir, claimed);
      }
      stopIfAborted();
      const recorded = fresh ? [] : await readApprovals(dir);
      stopIfAborted();
      const files = await writeBottleFiles({ dir, slug, bottle, services, prompt: loaded.agent.prompt });
      if (!fresh) await keepApprovedHosts(files, recorded);
      return files;
    };
    const files = fresh ? await rewrite() : await underDecisionLock(dir, rewrite, { signal: opts.signal });
    stopIfAborted();
    const plan: Plan = {
      version: PLAN_VERSION,
      slug,
      createdAt,
      backend: opts.backend,
      manifestDir,
      stateRoot,
      cwd,
      agent,
      bottle,
      services,
      files,
    };
    await savePlan(plan);
    await opts.handOver?.(plan);
    return plan;
  } catch (e) {
    // A dir we made but another flow claimed (it came for the same slug) is theirs now.
    if (fresh && !(isBbError(e) && e.code === "BUSY")) await rm(dir, { recursive: true, force: true });
    // The owner record from before the claim goes back with the rest; a copy that cannot
    // be put back stays, for the start flow's teardown to try again.
    else if (copied) await putBack(dir, copying!, { reloadFirewall: opts.reloadFirewall }).catch((pe) => log.warn(`could not put ${dir} back as it was: ${(pe as Error).message}`));
    else {
      if (copying) await dropPart(dir, copying);
      if (claimed) await releaseOwner(dir, opts.ownerPid!);
    }
    throw e;
  }
}

/**
 * A resumed bottle keeps the hosts the operator approved for it: the policy was just
 * written afresh from the manifest, and bb-supervise recorded each approval where only the
 * host writes (approvals.ts). A host the queue calls approved without such a record is
 * named and left out: the bundle can write the queue.
 */
async function keepApprovedHosts(files: Plan["files"], recorded: Approval[]): Promise<void> {
  const kept: string[] = [];
  const dropped: string[] = [];
  // The bundle about to start reads the policy afresh: no reload is owed to an old one.
  await clearReloadOwed(files.dir);
  for (const a of recorded) {
    const host = normalizeHost(a.host);
    if (!host) dropped.push(a.host);
    else if (await allowHost(files.firewallPolicy, { host, tlsPassthrough: a.tlsPassthrough })) kept.push(host);
  }
  if (kept.length) log.info(`bb-prepare: kept the host(s) you approved for this bottle before: ${kept.join(", ")}`);
  // Approved under an older, looser check (a wildcard over names anyone can register).
  if (dropped.length) log.warn(`left out ${dropped.join(", ")}, which you approved for this bottle before: bb-supervise no longer grants such a host (a wildcard over a public suffix opens every site anyone registers there); approve narrower hosts instead`);
  if (!files.superviseQueue || !existsSync(files.superviseQueue)) return;
  const unrecorded = (await listRequests(files.superviseQueue))
    .filter((r) => r.kind === "host" && r.status === "approved" && !recorded.some((a) => a.host === normalizeHost(r.host ?? "")))
    .map((r) => r.host!);
  if (unrecorded.length) {
    log.warn(
      `the supervise queue calls ${unrecorded.join(", ")} approved, but bb-supervise never recorded approving them (${APPROVALS_FILE}); ` +
        "left out: approve them again if you meant them",
    );
  }
}
