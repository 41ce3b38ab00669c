// Docker image -> .smolmachine, cached by image ID. smolvm packs only from an OCI
// registry, so the image goes: `docker save` -> a read-only registry of our own on
// loopback serving that tarball -> `smolvm pack create --image localhost:<port>/...`.
// The artifact lands in the cache under the image ID; an unchanged image never repacks.
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BbError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { defaultCacheRoot } from "../lib/paths.ts";
import { docker } from "../lib/docker/cmd.ts";
import { imageId as dockerImageId } from "../lib/docker/index.ts";
import type { Smolvm } from "../lib/smolvm/driver.ts";
import { readDockerArchive } from "./docker-archive.ts";
import { serveRegistry } from "./registry.ts";

/** Where artifacts live unless told otherwise: <cache root>/smolmachines. */
export function defaultArtifactDir(): string {
  return join(defaultCacheRoot(), "smolmachines");
}

interface PackOptions {
  /** A docker image reference or ID present in the local docker engine. */
  image: string;
  smolvm: Pick<Smolvm, "packCreate">;
  cacheDir?: string;
}

interface PackResult {
  artifact: string;
  cached: boolean;
  /** "sha256:<hex>": the docker image ID the artifact was made from. */
  imageId: string;
}

/** The cache file for an image ID. */
export function artifactPath(cacheDir: string, imageId: string): string {
  return join(cacheDir, `${imageId.replace(/^sha256:/, "")}.smolmachine`);
}

async function imageIdOf(image: string): Promise<string> {
  const id = await dockerImageId(image);
  if (!id) throw new BbError("DOCKER", `Cannot pack ${image}: docker has no such image (build it first)`);
  return id;
}

export async function packImage(opts: PackOptions): Promise<PackResult> {
  const cacheDir = opts.cacheDir ?? defaultArtifactDir();
  const imageId = await imageIdOf(opts.image);
  const artifact = artifactPath(cacheDir, imageId);
  if (existsSync(artifact)) {
    log.debug(`smolmachine: ${opts.image} (${imageId.slice(7, 19)}) already packed at ${artifact}`);
    return { artifact, cached: true, imageId };
  }
  mkdirSync(cacheDir, { recursive: true });
  // Work next to the cache so the final rename is atomic; a crash leaves only .tmp-* behind.
  const work = mkdtempSync(join(cacheDir, ".tmp-"));
  try {
    log.step(`smolmachine: packing ${opts.image} (${imageId.slice(7, 19)}) for smolvm; this happens once per image`);
    const tarball = join(work, "image.tar");
    await docker(["save", "-o", tarball, imageId], { what: `Cannot save ${opts.image}` });
    const archive = await readDockerArchive(tarball);
    if (archive.imageId !== imageId) {
      throw new BbError("PACK", `Cannot pack ${opts.image}: docker saved image ${archive.imageId}, expected ${imageId}`);
    }
    const registry = await serveRegistry({ image: archive, name: "bot-bottle/agent", tag: imageId.slice(7, 23) });
    let packed: string;
    try {
      packed = await opts.smolvm.packCreate({ image: registry.ref, output: join(work, "agent") });
    } finally {
      await registry.close();
    }
    renameSync(packed, artifact);
    return { artifact, cached: false, imageId };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
