// The loopback registry checked by a real OCI client: skopeo copies a `docker save`d
// image out of it, and every digest matches what docker itself reports.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { run } from "../lib/proc.ts";
import { buildTestImage, type TestImage } from "../tests/fakes/smolvm/images.ts";
import { readDockerArchive } from "./docker-archive.ts";
import { serveRegistry } from "./registry.ts";

let image: TestImage;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "bb-registry-skopeo-"));
  image = await buildTestImage();
});

after(async () => {
  await image?.remove();
  rmSync(dir, { recursive: true, force: true });
});

test("skopeo copies an image out of the loopback registry with the manifest, config and layer digests intact", async () => {
  const tarball = join(dir, "image.tar");
  await run(["docker", "save", "-o", tarball, image.tag]);
  const archive = await readDockerArchive(tarball);
  assert.equal(archive.imageId, image.id);
  const registry = await serveRegistry({ image: archive, name: "bot-bottle/agent", tag: "test" });
  try {
    const out = join(dir, "oci");
    await run(
      ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--preserve-digests", "--dest-oci-accept-uncompressed-layers", `docker://${registry.ref}`, `oci:${out}`],
      { timeoutMs: 120_000 },
    );
    const index = JSON.parse(readFileSync(join(out, "index.json"), "utf8"));
    assert.equal(index.manifests[0].digest, archive.manifestDigest, "manifest digest");
    const manifest = JSON.parse(readFileSync(join(out, "blobs", ...index.manifests[0].digest.split(":")), "utf8"));
    assert.equal(manifest.config.digest, image.id, "config digest is docker's image ID");
    const inspect = JSON.parse((await run(["docker", "image", "inspect", image.tag])).stdout)[0];
    assert.deepEqual(
      manifest.layers.map((l: { digest: string }) => l.digest),
      inspect.RootFS.Layers,
      "layer digests are docker's diff IDs",
    );
    assert.ok(manifest.layers.length >= 2, "base layer and the marker layer");
    // And by digest, the way a client pins what it pulled:
    const raw = await run(["skopeo", "inspect", "--raw", "--tls-verify=false", `docker://localhost:${registry.port}/bot-bottle/agent@${archive.manifestDigest}`]);
    assert.ok(Buffer.from(raw.stdout).equals(archive.manifest));
  } finally {
    await registry.close();
  }
});
