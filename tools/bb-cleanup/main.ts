// bb-cleanup: remove what bot-bottle created that no live bottle owns (containers,
// networks, volumes, smolvm machines, state dirs) across every backend this machine has, and with
// --images the old images no bottle of this checkout would start from. Prints one
// plan grouped by bottle on stderr, asks one y/N on the terminal (--yes skips it), then
// removes best-effort: a failed step is reported and the rest still goes. A live bottle is
// never touched, except the one named by --slug (how `just start` tears down its own
// bottle when it exits). Reads no plan; --json prints the plan and results on stdout.
//
//   bb-cleanup                      # plan, y/N, remove orphans
//   bb-cleanup --dry-run --json | jq '.plan[].slug'
//   bb-cleanup --slug researcher-k3x9 --yes
//   bb-cleanup --slug researcher-k3x9 --keep-state --yes   # containers and networks only (a resume rebuilds it)
//   bb-cleanup --images             # also old bot-bottle/* images
//
// Exit codes: see --help (0 ok, 1 a removal failed or the answer was no, 2 usage or no
// terminal to ask on without --yes).
import process from "node:process";
import { createProgram, mainOf, setExitCode, wholeNumber, writeStdout } from "../../lib/cli.ts";
import { BbError, EXIT } from "../../lib/errors.ts";
import { systemRemover } from "../../lib/inventory/backends.ts";
import { GRACE_MS } from "../../lib/inventory/classify.ts";
import { FILTER_LABEL_HELP, collectLabel } from "../../lib/inventory/flags.ts";
import { findStaleImages, forgetGoneImages, removeImage, totalSize, type OurImage } from "../../lib/images/stale.ts";
import { imagesText, planText, resultLine } from "../../lib/inventory/format.ts";
import { executeRemovals, isEmpty, message, type Removal, type RemovalResult } from "../../lib/inventory/remove.ts";
import { judgeable, recheckOrphans, scan, selectForCleanup } from "../../lib/inventory/scan.ts";
import { log } from "../../lib/log.ts";
import { stateRootFrom } from "../../lib/paths.ts";
import { checkSlug } from "../../lib/prepare/slug.ts";
import { confirm } from "./confirm.ts";

interface Options {
  yes?: boolean;
  dryRun?: boolean;
  json?: boolean;
  slug?: string;
  keepState?: boolean;
  stateDir?: string;
  filterLabel?: Record<string, string>;
  grace: number;
  images?: boolean;
}

interface Report {
  dryRun: boolean;
  plan: Removal[];
  kept: { slug: string; why: string }[];
  /** Stale images to remove (empty without --images). */
  images: OurImage[];
  /** null when nothing was attempted (dry run, or nothing to remove). */
  results: RemovalResult[] | null;
  /** Bottles of the plan left because they were live by the time they came to be removed
   * (a start flow took one while the y/N waited); what of them went before is in results. */
  skipped: { slug: string; why: string }[];
}

const program = createProgram("bb-cleanup", "Remove everything bot-bottle created that no live bottle owns (or one bottle with --slug).", {
  example: "bb-cleanup --dry-run",
  docker: true,
})
  .option("-y, --yes", "do not ask; remove right away")
  .option("-n, --dry-run", "print the plan only; change nothing")
  .option("--json", "print the plan and the results as JSON on stdout")
  .option("--slug <slug>", "tear down exactly this bottle, even if it is live")
  .option("--keep-state", "with --slug: remove the bottle's containers, networks and machines but keep its state dir (approved hosts, supervise queue) and git-gate's volume (its mirrors), so it can be rebuilt under its slug")
  .option("--state-dir <dir>", "state root for all bottles (default: $BB_STATE_DIR, else $XDG_STATE_HOME/bot-bottle)")
  .option("--filter-label <key=value>", FILTER_LABEL_HELP, collectLabel)
  .option("--images", "also remove bot-bottle images that no bottle of this checkout would start from and no container uses (old builds: a sidecar is ~280 MB, an agent ~1 GB)")
  .option("--grace <seconds>", "a bottle with no owner record counts as starting (live) this long after its newest state dir change or container", wholeNumber("--grace"), GRACE_MS / 1000)
  .addHelpText("after", "\nbb-cleanup: exit 1 also when the answer to y/N was no (nothing removed); exit 2 also when\nthere is no terminal to ask on and no --yes (nothing removed).\n")
  .action(async (o: Options) => {
    if (o.slug !== undefined) checkSlug(o.slug, "--slug");
    if (o.keepState && o.slug === undefined) throw new BbError("USAGE", "--keep-state keeps one bottle's state dir: it needs --slug SLUG");
    const s = await scan({ stateRoot: stateRootFrom(o.stateDir), scope: o.filterLabel, graceMs: o.grace * 1000 });
    const judged = judgeable(s, { slug: o.slug });
    const selected = selectForCleanup(judged, { slug: o.slug });
    const removals = o.keepState ? selected.removals.map((r) => ({ ...r, stateDir: null, volumes: [] })).filter((r) => !isEmpty(r)) : selected.removals;
    const kept = selected.kept;
    const found = await staleImages(o, s.backends.docker !== null);
    const images = found.stale;
    // Asked about images and told to go on: the record of what bot-bottle built forgets
    // the images the engine no longer has (removed here, or by hand).
    const forget = async () => {
      if (!o.images || o.dryRun) return;
      await forgetGoneImages(found.recorded).catch((e: unknown) => log.warn(`left the record of the images bot-bottle built as it was: ${message(e)}`));
    };
    const report: Report = { dryRun: Boolean(o.dryRun), plan: removals, kept: kept.map((b) => ({ slug: b.slug, why: b.why })), images, results: null, skipped: [] };
    const done = () => (o.json ? writeStdout(JSON.stringify(report, null, 2) + "\n") : Promise.resolve());

    if (kept.length) log.info(`keeping ${kept.length} live bottle(s): ${kept.map((b) => `${b.slug} (${b.why})`).join("; ")}`);
    if (removals.length === 0 && images.length === 0) {
      // Exit 0 all the same: a teardown that finds its bottle gone has nothing to fail at.
      log.info(o.slug ? `nothing left of bottle ${o.slug}: no container, network, volume or state dir by that slug (bb-list --all shows what there is)` : "nothing to clean up");
      await forget();
      return done();
    }
    const plan = (removals.length ? planText(removals) : "") + (images.length ? imagesText(images) : "");
    log.raw(`bb-cleanup ${o.dryRun ? "would remove" : "will remove"}:\n${plan}`);
    if (o.dryRun) return done();
    if (!o.yes) {
      if (!process.stdin.isTTY) {
        throw new BbError("USAGE", "Refusing to remove anything without confirmation: stdin is not a terminal to ask on. Pass --yes to remove, or --dry-run to only see the plan.");
      }
      if (!(await confirm("Remove all of the above?"))) {
        log.info("nothing removed");
        setExitCode(program, EXIT.failure);
        return;
      }
    }
    const results = await executeRemovals(removals, systemRemover(s.backends.smolvm), {
      onResult: (res) => (res.ok ? log.info(resultLine(res)) : log.error(resultLine(res))),
      // --slug takes its bottle live or not; a sweep takes none that came alive since the plan.
      recheck: o.slug === undefined ? recheckOrphans(judged, { graceMs: o.grace * 1000 }) : undefined,
      onSkip: (r, why) => {
        report.skipped.push({ slug: r.slug, why });
        log.info(`left ${r.slug}: it is live now (${why}), not the orphan it was when the plan was made`);
      },
    });
    // After the bottles: a removed container no longer holds its image.
    for (const image of images) {
      const name = image.ref ?? image.id;
      const res: RemovalResult = await removeImage(image).then(
        () => ({ slug: "", kind: "image", name, ok: true }),
        (e) => ({ slug: "", kind: "image", name, ok: false, error: message(e) }),
      );
      results.push(res);
      (res.ok ? log.info : log.error)(resultLine(res));
    }
    await forget();
    report.results = results;
    const failed = results.filter((r) => !r.ok);
    if (failed.length) {
      log.error(`${failed.length} of ${results.length} removal(s) failed (see above); run bb-cleanup again once the cause is fixed`);
      setExitCode(program, EXIT.failure);
    }
    await done();
  });

/** With --images, the stale ones; without, none, and for a whole-machine cleanup a hint
 * when there are some (a --slug teardown skips the lookup: it runs on every bottle exit). */
async function staleImages(o: Options, hasDocker: boolean): Promise<{ stale: OurImage[]; recorded: ReadonlySet<string> }> {
  if (!hasDocker || (!o.images && o.slug !== undefined)) return { stale: [], recorded: new Set() };
  const found = await findStaleImages({ scope: o.filterLabel });
  if (found.unknown.length) log.info(`not judging ${found.unknown.join(", ")} images: this checkout's daemons are not built yet (npm run build)`);
  if (o.images) {
    if (found.stale.length === 0) log.info("no old bot-bottle images to remove");
    return found;
  }
  if (found.stale.length) log.info(`${found.stale.length} old bot-bottle image(s) no bottle here uses (${totalSize(found.stale)}): bb-cleanup --images removes them`);
  return { stale: [], recorded: found.recorded };
}

await mainOf(program);
