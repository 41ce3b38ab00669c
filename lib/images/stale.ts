// Old images of ours. Both tags are hashes of their build inputs, so every change to the
// daemons, the agent Dockerfile or a pinned CLI version builds a new image and leaves the
// old one behind (a sidecar is ~280 MB, an agent ~1 GB). An image is stale when it is ours
// (repository bot-bottle/*, or an untagged image bot-bottle built, by this machine's record
// or its history: one whose tag moved to a rebuild), this checkout would not use it, and no
// container uses it.
import { boundedDocker, docker, failure, isNoSuch } from "../docker/cmd.ts";
import { labelFilterArgs } from "../docker/labels.ts";
import { BbError } from "../errors.ts";
import { log } from "../log.ts";
import { defaultCacheRoot, repoRoot } from "../paths.ts";
import { builtIds, pruneBuilt } from "./built.ts";
import { builtByUs } from "./own-build.ts";
import { agentTag, BASE_ID_LABEL } from "./ensure.ts";
import { sidecarContext } from "./sidecar.ts";
import { IMAGE_REPO } from "./versions.ts";
import { join } from "node:path";

export interface OurImage {
  id: string;
  /** repository:tag, or null for an untagged image (removed by ID). */
  ref: string | null;
  /** As docker prints it ("276MB"). */
  size: string;
  created: string;
}

interface Listed {
  ID: string;
  Repository: string;
  Tag: string;
  Size: string;
  CreatedSince: string;
}

const UNIT: Record<string, number> = { B: 1, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 };

/** The sum of docker's human sizes ("276MB" + "1.07GB"), in the same style ("1.3GB"). */
export function totalSize(images: OurImage[]): string {
  let bytes = 0;
  for (const i of images) {
    const m = /^([\d.]+)\s*([kKMGT]?B)$/.exec(i.size.trim());
    if (m) bytes += Number(m[1]) * UNIT[m[2]!]!;
  }
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)}GB` : `${Math.round(bytes / 1e6)}MB`;
}

/** Pure: the images to remove, given what this checkout uses (refs) and what containers use (IDs). */
export function pickStale(images: OurImage[], current: ReadonlySet<string>, inUse: ReadonlySet<string>): OurImage[] {
  const currentIds = new Set(images.filter((i) => i.ref && current.has(i.ref)).map((i) => i.id));
  return images.filter((i) => !(i.ref && current.has(i.ref)) && !currentIds.has(i.id) && !inUse.has(i.id));
}

/** The image refs this checkout would start bottles from (both CPUs for the agent). A
 * sidecar whose daemons are not built yet has no current tag: then no sidecar image is
 * judged stale, since the build to come may match one of them. */
function currentRefs(root = repoRoot()): { refs: Set<string>; unknown: string[] } {
  const refs = new Set<string>();
  const unknown: string[] = [];
  const dockerfile = join(root, "agent-image", "Dockerfile");
  for (const arch of ["x64", "arm64"] as const) refs.add(`${IMAGE_REPO.agent}:${agentTag(dockerfile, arch)}`);
  try {
    refs.add(`${IMAGE_REPO.sidecar}:${sidecarContext(root, log.child("sidecar image")).tag}`);
  } catch (e) {
    unknown.push(IMAGE_REPO.sidecar);
    log.debug(`no current sidecar tag: ${(e as Error).message}`);
  }
  return { refs, unknown };
}

async function listOurs(scope: Record<string, string>, built: ReadonlySet<string>): Promise<OurImage[]> {
  const list = async (filters: string[]) => {
    const r = await boundedDocker(["image", "ls", "--no-trunc", ...filters, ...labelFilterArgs(scope), "--format", "{{json .}}"], { what: "Cannot list images" });
    return r.stdout.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as Listed);
  };
  const [byRepo, byLabel] = await Promise.all([
    Promise.all(Object.values(IMAGE_REPO).map((repo) => list(["--filter", `reference=${repo}`]))),
    list(["--filter", "dangling=true", ...labelFilterArgs({ [BASE_ID_LABEL]: undefined })]),
  ]);
  // An untagged image with our labels may be built FROM ours (labels are inherited): it is
  // ours only when we built it, as the record says or (one built before the record was
  // kept) its history shows.
  const untagged = await Promise.all(byLabel.map(async (l) => (built.has(l.ID) || (await builtByUs(l.ID)) ? [l] : [])));
  const seen = new Map<string, OurImage>();
  for (const l of [...byRepo.flat(), ...untagged.flat()]) {
    const tagged = l.Repository !== "<none>" && l.Tag !== "<none>";
    const ref = tagged ? `${l.Repository}:${l.Tag}` : null;
    // Only our repositories: a labelled image someone re-tagged elsewhere is theirs now.
    if (ref && !Object.values(IMAGE_REPO).some((repo) => ref.startsWith(`${repo}:`))) continue;
    seen.set(ref ?? l.ID, { id: l.ID, ref, size: l.Size, created: l.CreatedSince });
  }
  return [...seen.values()];
}

/** Full image IDs of every container on the engine, running or not (not only ours). */
async function imagesInUse(): Promise<Set<string>> {
  const ids = (await boundedDocker(["container", "ls", "--all", "--quiet", "--no-trunc"], { what: "Cannot list containers" })).stdout.split("\n").filter(Boolean);
  if (ids.length === 0) return new Set();
  const r = await boundedDocker(["container", "inspect", "--format", "{{.Image}}", ...ids], { expect: [0, 1] });
  // A container removed between the two calls is "no such container"; the rest still count.
  if (r.code !== 0 && !isNoSuch(r.stderr)) throw failure(r, "Cannot inspect containers");
  return new Set(r.stdout.split("\n").filter(Boolean));
}

/** The stale images, the repositories not judged, and the IDs the record of built images
 * held before the engine was listed (for forgetGoneImages). */
export async function findStaleImages(opts: { root?: string; scope?: Record<string, string>; cacheRoot?: string } = {}): Promise<{ stale: OurImage[]; unknown: string[]; recorded: Set<string> }> {
  const { refs, unknown } = currentRefs(opts.root);
  const recorded = await builtIds(opts.cacheRoot ?? defaultCacheRoot());
  const [images, inUse] = await Promise.all([listOurs(opts.scope ?? {}, recorded), imagesInUse()]);
  const candidates = images.filter((i) => !unknown.some((repo) => i.ref?.startsWith(`${repo}:`)));
  return { stale: pickStale(candidates, refs, inUse), unknown, recorded };
}

/** Drop from the record of built images those of `recorded` (read before anything was
 * listed, so a build recorded since is never among them) that the engine no longer has. */
export async function forgetGoneImages(recorded: ReadonlySet<string>): Promise<void> {
  if (recorded.size === 0) return;
  const r = await boundedDocker(["image", "ls", "--all", "--quiet", "--no-trunc"], { what: "Cannot list images" });
  const present = new Set(r.stdout.split("\n").map((l) => l.trim()));
  await pruneBuilt(defaultCacheRoot(), new Set([...recorded].filter((id) => !present.has(id))));
}

/** Remove one image: a tag is untagged (and the image deleted with its last tag), an
 * untagged image by ID. Never forced: docker refuses an image a container still uses. */
export async function removeImage(image: OurImage): Promise<void> {
  // Not bounded like the listings: deleting a gigabyte of layers can take a slow disk a
  // while, and only `bb-cleanup --images`, never a teardown, waits on it.
  const r = await docker(["image", "rm", image.ref ?? image.id], { expect: [0, 1] });
  if (r.code === 0 || isNoSuch(r.stderr)) return;
  throw new BbError("DOCKER", `Cannot remove image ${image.ref ?? image.id}: ${r.stderr.trim().split("\n").at(-1)}`);
}
