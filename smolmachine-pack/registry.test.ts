// The loopback registry over real HTTP, fed a hand-made `docker save` tarball (built with
// the tar CLI: "./"-prefixed names, a PAX long name, a gzip layer and a plain one).
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { isBbError } from "../lib/errors.ts";
import { run } from "../lib/proc.ts";
import { listenOn } from "../tests/support/ports.ts";
import { skipWhen } from "../tests/support/skip.ts";
import { OCI_MANIFEST, readDockerArchive } from "./docker-archive.ts";
import { createRegistryHandler, listenLoopback, serveRegistry, type RunningRegistry } from "./registry.ts";
import { indexTar } from "./tar-index.ts";

const sha = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;
let dir: string;
let archive: string;
let plainLayer: Buffer;
let gzLayer: Buffer;
let config: Buffer;
let registry: RunningRegistry;
const longDir = `layers/${"d".repeat(120)}`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "bb-registry-"));
  const root = join(dir, "save");
  mkdirSync(join(root, "one"), { recursive: true });
  mkdirSync(join(root, longDir), { recursive: true });
  writeFileSync(join(dir, "hello.txt"), "hello from a layer\n");
  await run(["tar", "-cf", join(root, "one/layer.tar"), "-C", dir, "hello.txt"]);
  await run(["tar", "-czf", join(root, longDir, "layer.tar"), "-C", dir, "hello.txt"]);
  plainLayer = readFileSync(join(root, "one/layer.tar"));
  gzLayer = readFileSync(join(root, longDir, "layer.tar"));
  config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
  const configName = `${sha(config).slice(7)}.json`;
  writeFileSync(join(root, configName), config);
  writeFileSync(join(root, "manifest.json"), JSON.stringify([{ Config: configName, RepoTags: ["t:1"], Layers: ["one/layer.tar", `${longDir}/layer.tar`] }]));
  archive = join(dir, "image.tar");
  await run(["tar", "--format=pax", "-cf", archive, "-C", root, "."]);
  registry = await serveRegistry({ image: await readDockerArchive(archive), name: "bot-bottle/agent", tag: "v1" });
});

after(async () => {
  await registry?.close();
  rmSync(dir, { recursive: true, force: true });
});

const url = (path: string) => `http://127.0.0.1:${registry.port}${path}`;

test("indexTar() finds entries by name, including a PAX long name, without unpacking", async () => {
  const idx = await indexTar(archive);
  const e = idx.get(`${longDir}/layer.tar`);
  assert.ok(e, [...idx.keys()].join(", "));
  const bytes = readFileSync(archive).subarray(e.offset, e.offset + e.size);
  assert.ok(bytes.equals(gzLayer));
});

test("/v2/ answers 200 with the distribution API version header", async () => {
  const r = await fetch(url("/v2/"));
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("docker-distribution-api-version"), "registry/2.0");
  assert.deepEqual(await r.json(), {});
});

test("the manifest by tag and by digest is an OCI manifest whose digest header is the sha256 of its bytes", async () => {
  const byTag = await fetch(url("/v2/bot-bottle/agent/manifests/v1"));
  assert.equal(byTag.status, 200);
  assert.equal(byTag.headers.get("content-type"), OCI_MANIFEST);
  const body = Buffer.from(await byTag.arrayBuffer());
  const digest = byTag.headers.get("docker-content-digest")!;
  assert.equal(digest, sha(body));
  assert.equal(Number(byTag.headers.get("content-length")), body.length);
  const m = JSON.parse(body.toString("utf8"));
  assert.deepEqual(m.config, { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(config), size: config.length });
  assert.deepEqual(m.layers, [
    { mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha(plainLayer), size: plainLayer.length },
    { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha(gzLayer), size: gzLayer.length },
  ]);
  const byDigest = await fetch(url(`/v2/bot-bottle/agent/manifests/${digest}`));
  assert.ok(Buffer.from(await byDigest.arrayBuffer()).equals(body));
});

test("HEAD gives the same headers as GET and no body", async () => {
  for (const path of ["/v2/bot-bottle/agent/manifests/v1", `/v2/bot-bottle/agent/blobs/${sha(gzLayer)}`]) {
    const get = await fetch(url(path));
    await get.arrayBuffer();
    const head = await fetch(url(path), { method: "HEAD" });
    assert.equal(head.status, 200);
    for (const h of ["content-type", "content-length", "docker-content-digest"]) assert.equal(head.headers.get(h), get.headers.get(h), h);
    assert.equal((await head.arrayBuffer()).byteLength, 0);
  }
});

test("blobs come back byte for byte: the config from memory, layers straight from the tarball", async () => {
  for (const blob of [config, plainLayer, gzLayer]) {
    const r = await fetch(url(`/v2/bot-bottle/agent/blobs/${sha(blob)}`));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("docker-content-digest"), sha(blob));
    assert.ok(Buffer.from(await r.arrayBuffer()).equals(blob));
  }
});

test("unknown repositories, tags and blobs are 404 with OCI error codes", async () => {
  const cases: [string, string][] = [
    ["/v2/other/manifests/v1", "NAME_UNKNOWN"],
    ["/v2/bot-bottle/agent/manifests/v2", "MANIFEST_UNKNOWN"],
    [`/v2/bot-bottle/agent/blobs/sha256:${"0".repeat(64)}`, "BLOB_UNKNOWN"],
    ["/v2/_catalog", "NOT_FOUND"],
  ];
  for (const [path, code] of cases) {
    const r = await fetch(url(path));
    assert.equal(r.status, 404, path);
    assert.equal((await r.json()).errors[0].code, code, path);
  }
});

test("a malformed path is a 400, and the registry keeps serving", async () => {
  const r = await fetch(url("/v2/bot-bottle/agent/manifests/%E0%A4%A"));
  assert.equal(r.status, 400);
  await r.arrayBuffer();
  const still = await fetch(url("/v2/"));
  assert.equal(still.status, 200);
  await still.arrayBuffer();
});

test("every write is refused with 405: the registry is read-only", async () => {
  for (const [method, path] of [
    ["POST", "/v2/bot-bottle/agent/blobs/uploads/"],
    ["PUT", "/v2/bot-bottle/agent/manifests/v1"],
    ["DELETE", `/v2/bot-bottle/agent/blobs/${sha(config)}`],
    ["PATCH", "/v2/bot-bottle/agent/blobs/uploads/x"],
  ]) {
    const r = await fetch(url(path!), { method, body: method === "DELETE" ? undefined : "x" });
    assert.equal(r.status, 405, `${method} ${path}`);
    await r.arrayBuffer();
  }
  const still = await fetch(url("/v2/bot-bottle/agent/manifests/v1"));
  assert.equal(still.status, 200);
  await still.arrayBuffer();
});

test("readDockerArchive() refuses a tarball that docker save did not write", async () => {
  const other = join(dir, "other.tar");
  await run(["tar", "-cf", other, "-C", dir, "hello.txt"]);
  await assert.rejects(readDockerArchive(other), (e) => isBbError(e) && e.code === "PACK" && /no manifest\.json/.test(e.message));
});

// Whether this host has ::1 at all (where it has not, nothing can answer there).
const noV6 = await new Promise<string | false>((resolve) => {
  const s = createServer().once("error", (e: NodeJS.ErrnoException) => resolve(`this host has no ::1 (${e.code})`));
  s.listen(0, "::1", () => s.close(() => resolve(false)));
});

test("the registry never shares its port with another process on ::1, where a puller of localhost:PORT may go first", skipWhen(noV6, "registry ::1"), async (t) => {
  // Another local user listening on ::1 at a port: serving 127.0.0.1 alone there would let
  // it answer a pull from localhost:PORT with an image of its own.
  const taken = await listenOn(t, "::1");
  const handler = createRegistryHandler({ image: await readDockerArchive(archive), name: "bot-bottle/agent", tag: "v1" });
  await assert.rejects(listenLoopback(handler, taken), (e: NodeJS.ErrnoException) => e.code === "EADDRINUSE" && /::1 port \d+ is taken by another process/.test(e.message));
  const free = await fetch(`http://127.0.0.1:${taken}/v2/`).then(() => "answered", () => "refused");
  assert.equal(free, "refused", "the 127.0.0.1 side was left listening");

  // serveRegistry: whatever port it lands on, both sides of localhost are its own.
  for (const host of ["127.0.0.1", "[::1]"]) {
    const r = await fetch(`http://${host}:${registry.port}/v2/bot-bottle/agent/manifests/v1`);
    assert.equal(r.status, 200, host);
    await r.arrayBuffer();
  }
});
