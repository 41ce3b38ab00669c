// Build-or-reuse for the two images. The tag is a hash of the build inputs, so "is the
// image there" is one `docker image inspect`: present means current, absent means build.
// The base image is an input too, but one only the engine knows: each build records the
// base's ID in a label, and an image built on another base (a newer debian:bookworm-slim)
// is rebuilt under the same tag. Both inspects run together, so reuse costs no extra time.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { BbError } from "../errors.ts";
import { log, type Logger } from "../log.ts";
import { defaultCacheRoot, repoRoot } from "../paths.ts";
import { dockerInfo } from "../docker/daemon.ts";
import { inspectImage } from "../docker/inspect.ts";
import { stageAgentTools, stageKey, STAGE_LAYOUT, type AgentArch } from "./agent-stage.ts";
import { ensureBaseImage } from "./base.ts";
import { buildImage } from "./build.ts";
import { recordBuilt } from "./built.ts";
import { assembleSidecarContext, sidecarContext } from "./sidecar.ts";
import { contentTag } from "./tag.ts";
import { AGENT_CLIS, BASE_IMAGE, IMAGE_REPO, type ImageName } from "./versions.ts";

/** Label on both images: the ID of the base image they were built on. */
export const BASE_ID_LABEL = "bot-bottle.base-id";

interface EnsureImageOptions {
  /** Repository root holding sidecar-image/, agent-image/ and dist/ (default: this checkout). */
  root?: string;
  /** Cache root for staged agent CLIs (default: $XDG_CACHE_HOME/bot-bottle). */
  cacheRoot?: string;
  /** CPU of the image (default: the Docker engine's). */
  arch?: AgentArch;
  /** Extra labels on a newly built image (tests add bot-bottle.test=1). */
  labels?: Record<string, string>;
  logger?: Logger;
}

interface EnsuredImage {
  ref: string;
  id: string;
  /** False when the image was already there. */
  built: boolean;
  seconds: number;
}

export async function ensureImage(name: ImageName, opts: EnsureImageOptions = {}): Promise<EnsuredImage> {
  const started = Date.now();
  const root = opts.root ?? repoRoot();
  const logger = opts.logger ?? log.child(`${name} image`);
  const done = (ref: string, id: string, built: boolean): EnsuredImage => ({ ref, id, built, seconds: (Date.now() - started) / 1000 });

  if (name === "sidecar") {
    const ctx = sidecarContext(root, logger);
    const ref = `${IMAGE_REPO.sidecar}:${ctx.tag}`;
    const current = await reusable(ref, logger);
    if (current) return done(ref, current, false);
    const labels = { ...opts.labels, [BASE_ID_LABEL]: await ensureBaseImage() };
    logger.step(`building ${ref} (first use of these daemons)`);
    const dir = assembleSidecarContext(root, ctx);
    try {
      await buildImage({ ref, dockerfile: join(dir, "Dockerfile"), contextDir: dir, labels, logger });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return done(ref, await builtId(ref, opts), true);
  }

  const dockerfile = join(root, "agent-image", "Dockerfile");
  const refFor = (a: AgentArch) => `${IMAGE_REPO.agent}:${agentTag(dockerfile, a)}`;
  // The tag depends on the engine's CPU, which takes a round trip to learn. Look the image up
  // for this host's CPU meanwhile: the engine almost always runs on it (a remote engine on
  // another CPU costs one more lookup).
  const guess = opts.arch ?? hostArch();
  const [arch, guessed] = await Promise.all([
    opts.arch ?? dockerInfo().then((i) => archOf(i.architecture)),
    guess ? lookUp(refFor(guess)) : null,
  ]);
  const ref = refFor(arch);
  const current = decideReuse(arch === guess && guessed ? guessed : await lookUp(ref), logger);
  if (current) return done(ref, current, false);
  const labels = { ...opts.labels, [BASE_ID_LABEL]: await ensureBaseImage() };
  logger.step(`building ${ref} (first use of claude-code ${AGENT_CLIS.claude.version}, codex ${AGENT_CLIS.codex.version}; a few minutes)`);
  const staged = await stageAgentTools({ arch, cacheRoot: opts.cacheRoot ?? defaultCacheRoot(), logger });
  await buildImage({ ref, dockerfile, contextDir: staged.dir, labels, logger });
  const result = done(ref, await builtId(ref, opts), true);
  logger.info(`built ${ref} in ${result.seconds.toFixed(0)}s`);
  return result;
}

/** The agent image tag: its Dockerfile plus what the staging would produce. The staged
 * tree is a function of the pinned versions, the arch and the layout, so the image can be
 * found without staging anything. */
export function agentTag(dockerfile: string, arch: AgentArch): string {
  let text: Uint8Array;
  try {
    text = readFileSync(dockerfile);
  } catch (e) {
    throw new BbError("NOT_FOUND", `Cannot build the agent image: ${dockerfile} is missing`, { cause: e });
  }
  return contentTag([
    { name: "Dockerfile", content: text },
    { name: "stage", content: JSON.stringify({ key: stageKey(arch), layout: STAGE_LAYOUT, clis: AGENT_CLIS }) },
  ]);
}

/** Docker's architecture name to npm's. */
export function archOf(dockerArch: string): AgentArch {
  if (dockerArch === "x86_64" || dockerArch === "amd64") return "x64";
  if (dockerArch === "aarch64" || dockerArch === "arm64") return "arm64";
  throw new BbError("DOCKER", `The Docker engine runs on ${dockerArch}; the agent image supports x86_64 and aarch64 only`);
}

interface LookUp {
  ref: string;
  image: Awaited<ReturnType<typeof inspectImage>>;
  base: Awaited<ReturnType<typeof inspectImage>>;
}

/** Lookups started ahead of need (prefetchAgentImage), each taken by the next lookUp of its ref. */
const prefetched = new Map<string, Promise<LookUp>>();

/**
 * Start looking the agent image up for this host's CPU (and checking the engine) before
 * the caller knows it needs it: bb-vm does this while its plan is still arriving down the
 * pipe, so the lookup overlaps the step before it. The next ensureImage("agent") in this
 * process takes the answer; a failed prefetch is simply done again there.
 */
export function prefetchAgentImage(root: string = repoRoot()): void {
  const arch = hostArch();
  if (!arch) return;
  dockerInfo().catch(() => {});
  let ref: string;
  try {
    ref = `${IMAGE_REPO.agent}:${agentTag(join(root, "agent-image", "Dockerfile"), arch)}`;
  } catch {
    return; // ensureImage says what is missing
  }
  const early = inspectBoth(ref);
  early.catch(() => {});
  prefetched.set(ref, early);
}

/** `ref` and the base image, inspected together (or taken from a prefetch). */
function lookUp(ref: string): Promise<LookUp> {
  const early = prefetched.get(ref);
  if (!early) return inspectBoth(ref);
  prefetched.delete(ref);
  return early.catch(() => inspectBoth(ref));
}

async function inspectBoth(ref: string): Promise<LookUp> {
  const [image, base] = await Promise.all([inspectImage(ref), inspectImage(BASE_IMAGE)]);
  return { ref, image, base };
}

/** The ID of the looked-up image when it exists and was built on the base image present now
 * (or the base is gone, so nothing could be rebuilt anyway); null when it must be built. */
function decideReuse({ ref, image, base }: LookUp, logger: Logger): string | null {
  if (!image) return null;
  if (!base || image.labels[BASE_ID_LABEL] === base.id) return image.id;
  logger.step(`${ref} was built on another ${BASE_IMAGE} than the one present now: rebuilding it`);
  return null;
}

async function reusable(ref: string, logger: Logger): Promise<string | null> {
  return decideReuse(await lookUp(ref), logger);
}

/** This machine's CPU as an agent image arch, or null for one the image does not support. */
function hostArch(): AgentArch | null {
  return process.arch === "x64" || process.arch === "arm64" ? process.arch : null;
}

/** The ID of the image just built, recorded as ours (lib/images/built.ts) so that it is
 * found once a later build takes its tag. */
async function builtId(ref: string, opts: EnsureImageOptions): Promise<string> {
  const image = await inspectImage(ref);
  if (!image) throw new BbError("DOCKER", `docker build reported success but ${ref} is not present`);
  recordBuilt(opts.cacheRoot ?? defaultCacheRoot(), image.id);
  return image.id;
}
