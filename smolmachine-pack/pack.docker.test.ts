// packImage() end to end with the smolvm stand-in, whose `pack create` really pulls the
// image from our loopback registry (with skopeo): cache miss, cache hit (no second pack,
// checked on the stand-in's call log), and a changed image packing anew.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openSmolvm, type Smolvm } from "../lib/smolvm/driver.ts";
import { fakeSmolvm, type FakeSmolvm } from "../tests/fakes/smolvm/harness.ts";
import { buildTestImage, type TestImage } from "../tests/fakes/smolvm/images.ts";
import { artifactImageId } from "../tests/fakes/smolvm/runtime.ts";
import { artifactPath, packImage } from "./pack.ts";

let fake: FakeSmolvm;
let smolvm: Smolvm;
let cacheDir: string;
const images: TestImage[] = [];

before(async () => {
  fake = fakeSmolvm("0.8.1");
  smolvm = await openSmolvm({ env: fake.env });
  cacheDir = mkdtempSync(join(tmpdir(), "bb-pack-cache-"));
});

after(async () => {
  await fake?.cleanup();
  for (const i of images) await i.remove();
  rmSync(cacheDir, { recursive: true, force: true });
});

const packCalls = () => fake.calls().filter((c) => c.argv[0] === "pack");

test("packImage() packs on a miss, then serves the cached artifact without calling pack create again", async () => {
  const tag = "bb-test-pack:agent";
  const image = await buildTestImage({ tag, marker: "first" });
  images.push(image);

  const first = await packImage({ image: tag, smolvm, cacheDir });
  assert.deepEqual(first, { artifact: artifactPath(cacheDir, image.id), cached: false, imageId: image.id });
  assert.equal(await artifactImageId(first.artifact), image.id, "the artifact holds the image that was pulled from the registry");
  const [call] = packCalls();
  assert.match(call!.argv.join(" "), /^pack create --image localhost:\d+\/bot-bottle\/agent:[0-9a-f]{16} -o /);
  assert.deepEqual(readdirSync(cacheDir), [`${image.id.slice(7)}.smolmachine`], "no work files left in the cache");

  const second = await packImage({ image: tag, smolvm, cacheDir });
  assert.deepEqual(second, { ...first, cached: true });
  assert.equal(packCalls().length, 1, "a hit does not repack");
});

test("packImage() packs again when the image under the same tag changed", async () => {
  const tag = "bb-test-pack:changing";
  const v1 = await buildTestImage({ tag, marker: "v1" });
  images.push(v1);
  const a = await packImage({ image: tag, smolvm, cacheDir });
  const v2 = await buildTestImage({ tag, marker: "v2" });
  images.push(v2);
  assert.notEqual(v2.id, v1.id);
  const before = packCalls().length;
  const b = await packImage({ image: tag, smolvm, cacheDir });
  assert.equal(b.cached, false);
  assert.notEqual(b.artifact, a.artifact);
  assert.equal(await artifactImageId(b.artifact), v2.id);
  assert.equal(packCalls().length, before + 1);
  assert.ok(existsSync(a.artifact), "the old artifact stays until something prunes it");
});

test("packImage() names a missing image clearly and packs nothing", async () => {
  const before = packCalls().length;
  await assert.rejects(packImage({ image: "bb-test-pack:does-not-exist", smolvm, cacheDir }), /docker has no such image/);
  assert.equal(packCalls().length, before);
});
