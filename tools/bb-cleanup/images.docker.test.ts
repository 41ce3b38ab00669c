import assert from "node:assert/strict";
import { test } from "node:test";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUILT_FILE, recordBuilt } from "../../lib/images/built.ts";
import { BASE_ID_LABEL } from "../../lib/images/ensure.ts";
import { BASE_IMAGE } from "../../lib/images/versions.ts";
import { RUN_LABEL, testRun } from "../../lib/inventory/testdata/bottles.ts";
import { run } from "../../lib/proc.ts";

interface Report {
  images: { id: string; ref: string | null }[];
  results: { kind: string; name: string; ok: boolean; error?: string }[] | null;
}

test("bb-cleanup --images removes old bot-bottle images, untagged leftovers it built included, and keeps one a container uses and a user's untagged image built FROM ours", async (t) => {
  const r = await testRun(t);
  const labels = { "bot-bottle.test": "1", [RUN_LABEL]: r.id, [BASE_ID_LABEL]: "sha256:test" };
  const ours = async () =>
    (await run(["docker", "image", "ls", "--no-trunc", "--filter", `label=${RUN_LABEL}=${r.id}`, "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"])).stdout.split("\n").filter(Boolean).sort();
  t.after(async () => {
    await run(["docker", "container", "rm", "--force", `bb-test-${r.id}-user`], { expect: [0, 1] });
    // Twice: a parent goes only once the images built FROM it are gone.
    for (const _ of [1, 2]) for (const line of await ours()) await run(["docker", "image", "rm", "--force", line.split(" ")[0]!], { expect: [0, 1] });
  });
  // Tiny images on the base: each label set is its own image ID, built without a layer.
  const build = async (ref: string, n: number, from = BASE_IMAGE) => {
    const args = Object.entries({ ...labels, "bot-bottle.test-n": String(n) }).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
    await run(["docker", "build", "--quiet", "--tag", ref, ...args, "-"], { input: `FROM ${from}\n` });
    return (await run(["docker", "image", "inspect", "--format", "{{.Id}}", ref])).stdout.trim();
  };
  const old = `bot-bottle/sidecar:t${r.id}-old`;
  const used = `bot-bottle/agent:t${r.id}-used`;
  const moved = `bot-bottle/agent:t${r.id}-moved`;
  await build(old, 1);
  const usedId = await build(used, 2);
  const untaggedId = await build(moved, 3);
  const movedId = await build(moved, 4); // the tag moves: image 3 is left untagged
  // A user's image FROM one of ours inherits our labels; their rebuild leaves it untagged.
  const theirs = `bb-test-${r.id}-theirs:latest`;
  const theirsId = await build(theirs, 5, used);
  const theirsNowId = await build(theirs, 6, used);
  // bb-bundle and bb-vm record what they build in the cache root; 1 to 4 are "ours".
  const cache = await mkdtemp(join(tmpdir(), "bb-images-cache-"));
  t.after(() => rm(cache, { recursive: true, force: true }));
  for (const ref of [old, used, moved]) recordBuilt(cache, (await run(["docker", "image", "inspect", "--format", "{{.Id}}", ref])).stdout.trim());
  recordBuilt(cache, untaggedId);
  const env = { env: { BB_CACHE_DIR: cache } };
  await run(["docker", "create", "--name", `bb-test-${r.id}-user`, "--label", `${RUN_LABEL}=${r.id}`, used, "true"]);

  const hint = await r.tool("bb-cleanup", ["--dry-run"], env);
  assert.equal(hint.code, 0, hint.stderr);
  assert.match(hint.stderr, /3 old bot-bottle image\(s\) no bottle here uses .*: bb-cleanup --images removes them/);

  const dry = await r.tool("bb-cleanup", ["--images", "--dry-run", "--json"], env);
  assert.equal(dry.code, 0, dry.stderr);
  const planned = (dry.json() as Report).images.map((i) => i.ref ?? i.id).sort();
  assert.deepEqual(planned, [moved, old, untaggedId].sort());
  assert.match(dry.stderr, /images no bottle here uses/);
  assert.match(dry.stderr, new RegExp(`image  ${old.replace(/[/.]/g, "\\$&")}`));
  assert.equal((await ours()).length, 6, "a dry run removes nothing");

  const done = await r.tool("bb-cleanup", ["--images", "--yes", "--json"], env);
  assert.equal(done.code, 0, done.stderr);
  const results = (done.json() as Report).results!;
  assert.deepEqual(results.filter((x) => x.kind === "image").map((x) => [x.name, x.ok]).sort(), [[moved, true], [old, true], [untaggedId, true]].sort());
  assert.deepEqual(await ours(), [`${usedId} ${used}`, `${theirsId} <none>:<none>`, `${theirsNowId} ${theirs}`].sort());
  assert.notEqual(movedId, untaggedId);
});

test("bb-cleanup --images finds an untagged leftover bot-bottle built before it kept its record, by its history, never a user's image built FROM ours; and the record forgets images the engine no longer has", async (t) => {
  const r = await testRun(t);
  const scope = { "bot-bottle.test": "1", [RUN_LABEL]: r.id };
  const ours = async () =>
    (await run(["docker", "image", "ls", "--no-trunc", "--filter", `label=${RUN_LABEL}=${r.id}`, "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"])).stdout.split("\n").filter(Boolean).sort();
  t.after(async () => {
    for (const _ of [1, 2]) for (const line of await ours()) await run(["docker", "image", "rm", "--force", line.split(" ")[0]!], { expect: [0, 1] });
  });
  const idOf = async (ref: string) => (await run(["docker", "image", "inspect", "--format", "{{.Id}}", ref])).stdout.trim();
  // Built as bb-bundle builds the sidecar: our Dockerfile's last two steps, and the base's ID
  // as a build label. The test labels scope it to this run (a user's build FROM it inherits them).
  const buildOurs = async (ref: string, n: number) => {
    const labels = { ...scope, [BASE_ID_LABEL]: `sha256:test${n}` };
    const args = Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
    await run(["docker", "build", "--quiet", "--tag", ref, ...args, "-"], { input: `FROM ${BASE_IMAGE}\nLABEL bot-bottle="1" bot-bottle.image="sidecar"\nENTRYPOINT ["true"]\n` });
    return idOf(ref);
  };
  const buildTheirs = async (ref: string, from: string, step: string) => {
    await run(["docker", "build", "--quiet", "--tag", ref, "-"], { input: `FROM ${from}\n${step}\n` });
    return idOf(ref);
  };
  const tag = `bot-bottle/sidecar:t${r.id}-pre`;
  const leftId = await buildOurs(tag, 1);
  const nowId = await buildOurs(tag, 2); // a rebuild takes the tag: image 1 is left untagged, and never recorded
  // A user's images FROM ours, each rebuilt so the first is left untagged with every label of ours.
  const theirs = `bb-test-${r.id}-theirs:latest`;
  const theirsEnv = await buildTheirs(theirs, tag, "ENV STEP=1");
  await buildTheirs(theirs, tag, "ENV STEP=2");
  const theirsEntry = await buildTheirs(theirs, tag, 'ENTRYPOINT ["true"]');
  await buildTheirs(theirs, tag, "ENV STEP=3");
  const cache = await mkdtemp(join(tmpdir(), "bb-images-cache-"));
  t.after(() => rm(cache, { recursive: true, force: true }));
  // The record knows the current build and an image removed by hand since.
  const goneId = await buildOurs(`bot-bottle/sidecar:t${r.id}-gone`, 3);
  await run(["docker", "image", "rm", `bot-bottle/sidecar:t${r.id}-gone`]);
  recordBuilt(cache, nowId);
  recordBuilt(cache, goneId);
  const record = () => readFile(join(cache, BUILT_FILE), "utf8");
  const env = { env: { BB_CACHE_DIR: cache } };

  const dry = await r.tool("bb-cleanup", ["--images", "--dry-run", "--json"], env);
  assert.equal(dry.code, 0, dry.stderr);
  assert.deepEqual((dry.json() as Report).images.map((i) => i.ref ?? i.id).sort(), [leftId, tag].sort());
  assert.equal(await record(), `${nowId}\n${goneId}\n`, "a dry run changed the record");

  const done = await r.tool("bb-cleanup", ["--images", "--yes", "--json"], env);
  assert.equal(done.code, 0, done.stderr);
  assert.deepEqual((done.json() as Report).results!.map((x) => [x.name, x.ok]).sort(), [[leftId, true], [tag, true]].sort());
  const left = (await ours()).map((l) => l.split(" ")[0]);
  assert.ok(left.includes(theirsEnv) && left.includes(theirsEntry), `a user's image built FROM ours was removed:\n${left.join("\n")}`);
  assert.ok(!left.includes(leftId) && !left.includes(nowId));
  // Untagged, the current build stays as the parent of the user's images: the record keeps it.
  assert.equal((await run(["docker", "image", "inspect", nowId], { expect: [0, 1] })).code, 0);
  assert.equal(await record(), `${nowId}\n`, "the record still names an image the engine no longer has, or lost one it has");
});
