// A `docker save` tarball seen as an OCI image: its config and layers become blobs
// (addressed by sha256, served straight from the tarball) and an OCI image manifest is
// written for them. Works for both layouts docker writes: the legacy one
// (<id>.json + <v1id>/layer.tar) and the OCI one of Docker 25+ (blobs/sha256/...); both
// carry a manifest.json naming the config and the layers in order.
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { z } from "zod/v3";
import { BbError } from "../lib/errors.ts";
import { indexTar, type TarEntry } from "./tar-index.ts";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";

export interface Blob {
  digest: string;
  size: number;
  mediaType: string;
  /** Where the bytes are in the archive (layers), or the bytes themselves (config). */
  entry: TarEntry | null;
  bytes: Buffer | null;
}

export interface ArchiveImage {
  archive: string;
  /** The manifest exactly as served; its digest is sha256 of these bytes. */
  manifest: Buffer;
  manifestDigest: string;
  /** "sha256:<hex>" of the config: docker's image ID. */
  imageId: string;
  blobs: Map<string, Blob>;
  layers: Blob[];
}

const SaveManifest = z.array(z.object({ Config: z.string(), Layers: z.array(z.string()) }).passthrough()).min(1);

async function readEntry(archive: string, e: TarEntry): Promise<Buffer> {
  const fh = await open(archive, "r");
  try {
    const buf = Buffer.alloc(e.size);
    await fh.read(buf, 0, e.size, e.offset);
    return buf;
  } finally {
    await fh.close();
  }
}

function hashRange(archive: string, e: TarEntry): Promise<{ digest: string; head: Buffer }> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    let head = Buffer.alloc(0);
    if (e.size === 0) return resolve({ digest: `sha256:${h.digest("hex")}`, head });
    createReadStream(archive, { start: e.offset, end: e.offset + e.size - 1 })
      .on("data", (chunk) => {
        const b = chunk as Buffer;
        if (head.length < 4) head = Buffer.concat([head, b.subarray(0, 4)]);
        h.update(b);
      })
      .on("error", reject)
      .on("end", () => resolve({ digest: `sha256:${h.digest("hex")}`, head }));
  });
}

function layerMediaType(head: Buffer): string {
  if (head[0] === 0x1f && head[1] === 0x8b) return "application/vnd.oci.image.layer.v1.tar+gzip";
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "application/vnd.oci.image.layer.v1.tar+zstd";
  return "application/vnd.oci.image.layer.v1.tar";
}

/** Read a `docker save` tarball (one image) into manifest + blobs, hashing every layer once. */
export async function readDockerArchive(archive: string): Promise<ArchiveImage> {
  const entries = await indexTar(archive);
  const fail = (why: string) => new BbError("PACK", `Cannot serve ${archive} as an image: ${why} (is it a 'docker save' tarball?)`);
  const m = entries.get("manifest.json");
  if (!m) throw fail("no manifest.json inside");
  let saved: z.infer<typeof SaveManifest>;
  try {
    saved = SaveManifest.parse(JSON.parse((await readEntry(archive, m)).toString("utf8")));
  } catch (e) {
    throw fail(`manifest.json is not what docker save writes: ${(e as Error).message}`);
  }
  if (saved.length > 1) throw fail(`it holds ${saved.length} images; save exactly one`);
  const img = saved[0]!;
  const configEntry = entries.get(img.Config);
  if (!configEntry) throw fail(`config ${img.Config} is missing`);
  const configBytes = await readEntry(archive, configEntry);
  const config: Blob = {
    digest: `sha256:${createHash("sha256").update(configBytes).digest("hex")}`,
    size: configBytes.length,
    mediaType: OCI_CONFIG,
    entry: null,
    bytes: configBytes,
  };
  const layers: Blob[] = [];
  for (const path of img.Layers) {
    const entry = entries.get(path);
    if (!entry) throw fail(`layer ${path} is missing`);
    const { digest, head } = await hashRange(archive, entry);
    layers.push({ digest, size: entry.size, mediaType: layerMediaType(head), entry, bytes: null });
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    }),
  );
  const blobs = new Map<string, Blob>([[config.digest, config], ...layers.map((l) => [l.digest, l] as [string, Blob])]);
  return {
    archive,
    manifest,
    manifestDigest: `sha256:${createHash("sha256").update(manifest).digest("hex")}`,
    imageId: config.digest,
    blobs,
    layers,
  };
}
