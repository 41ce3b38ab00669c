// The sidecar image from the real sidecar-image/Dockerfile with placeholder daemons: built
// on first use, reused while unchanged, rebuilt after a change, and running our init as an
// unprivileged PID 1 under the Node that Debian ships.
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { isBbError } from "../errors.ts";
import { createLogger } from "../log.ts";
import { repoRoot } from "../paths.ts";
import { docker } from "../docker/cmd.ts";
import { LABEL } from "../docker/labels.ts";
import { ensureBaseImage } from "./base.ts";
import { BASE_ID_LABEL, ensureImage } from "./ensure.ts";

const root = mkdtempSync(join(tmpdir(), "bb-sidecar-image-test-"));
const built = new Set<string>();
const lines: string[] = [];
const logger = createLogger({ level: "info", write: (t) => void lines.push(t) });
const labels = { [LABEL.test]: "1" };

// The placeholder init reports what the real daemons will rely on.
const INIT = `
const report = { node: process.version, uid: process.getuid(), argv: process.argv.slice(2),
  esm: typeof import.meta.url, subtle: typeof globalThis.crypto?.subtle, uuid: typeof globalThis.crypto?.randomUUID,
  child: (await import("node:child_process")).execFileSync(process.execPath, ["-e", "process.stdout.write(typeof crypto)"]).toString() };
console.log(JSON.stringify(report));
`;

before(() => {
  mkdirSync(join(root, "sidecar-image"), { recursive: true });
  mkdirSync(join(root, "dist", "sidecar"), { recursive: true });
  cpSync(join(repoRoot(), "sidecar-image", "Dockerfile"), join(root, "sidecar-image", "Dockerfile"));
  writeFileSync(join(root, "dist", "sidecar", "init.js"), INIT);
});

after(async () => {
  for (const ref of built) await docker(["image", "rm", "--force", ref], { expect: [0, 1] });
  rmSync(root, { recursive: true, force: true });
});

async function ensure() {
  const image = await ensureImage("sidecar", { root, labels, logger });
  built.add(image.ref);
  return image;
}

test("the first ensureImage() builds, streaming docker's output; the second reuses", async () => {
  const first = await ensure();
  assert.match(first.ref, /^bot-bottle\/sidecar:[0-9a-f]{16}$/);
  assert.equal(first.built, true);
  assert.ok(lines.some((l) => /Step \d+\/\d+ : FROM debian:bookworm-slim|FROM docker\.io\/library\/debian:bookworm-slim/.test(l)), lines.join(""));
  const again = await ensure();
  assert.deepEqual([again.ref, again.id, again.built], [first.ref, first.id, false]);
  const inspect = JSON.parse((await docker(["image", "inspect", first.ref])).stdout)[0];
  assert.equal(inspect.Config.Labels["bot-bottle"], "1");
  assert.equal(inspect.Config.Labels[LABEL.test], "1");
});

test("the image runs our init as uid 1000 under Node 18+ as an ES module with global WebCrypto, passing its arguments", async () => {
  const { ref } = await ensure();
  const r = await docker(["run", "--rm", "--label", `${LABEL.test}=1`, ref, "--daemons", "firewall"]);
  const report = JSON.parse(r.stdout);
  assert.equal(report.uid, 1000);
  assert.ok(Number(/^v(\d+)/.exec(report.node)![1]) >= 18, report.node);
  assert.equal(report.esm, "string");
  // lib/tls and the MCP SDK use the global WebCrypto, in the init and in the daemons it starts.
  assert.deepEqual([report.subtle, report.uuid, report.child], ["object", "function", "object"]);
  assert.deepEqual(report.argv, ["--daemons", "firewall"]);
  const tools = await docker(["run", "--rm", "--label", `${LABEL.test}=1`, "--entrypoint", "sh", ref, "-c", "git --version && ssh -V 2>&1 && test -w /var/lib/bb/git-gate && echo writable"]);
  assert.match(tools.stdout, /git version 2\.\d+/);
  assert.match(tools.stdout, /OpenSSH/);
  assert.match(tools.stdout, /writable/);
});

test("a changed daemon bundle gives a new tag and a rebuild", async () => {
  const before = await ensure();
  writeFileSync(join(root, "dist", "sidecar", "firewall.js"), "// placeholder\n");
  const after = await ensure();
  assert.notEqual(after.ref, before.ref);
  assert.equal(after.built, true);
});

test("an image built on another base image is rebuilt under the same tag", async () => {
  const first = await ensure();
  const labelOf = async (ref: string) => JSON.parse((await docker(["image", "inspect", ref])).stdout)[0].Config.Labels[BASE_ID_LABEL];
  assert.equal(await labelOf(first.ref), await ensureBaseImage(), "a build records the base image's ID");
  // Stand-in for "debian:bookworm-slim has moved on": the same tag, recorded on another base.
  const stale = join(root, "stale");
  mkdirSync(stale, { recursive: true });
  writeFileSync(join(stale, "Dockerfile"), `FROM ${first.ref}\nLABEL ${BASE_ID_LABEL}=sha256:an-older-base ${LABEL.test}=1\n`);
  const staleId = (await docker(["build", "--quiet", "--tag", first.ref, stale])).stdout.trim();
  assert.equal(await labelOf(first.ref), "sha256:an-older-base");
  const rebuilt = await ensure();
  // The stand-in is untagged now and must not outlive the test. (The rebuild may come out
  // of docker's cache with the first build's ID, so that one stays.)
  await docker(["image", "rm", "--force", staleId], { expect: [0, 1] });
  assert.deepEqual([rebuilt.ref, rebuilt.built], [first.ref, true]);
  assert.equal(await labelOf(rebuilt.ref), await ensureBaseImage());
  assert.ok(lines.some((l) => /was built on another debian:bookworm-slim than the one present now: rebuilding it/.test(l)));
});

test("ensureBaseImage() names the script that makes a missing base image", async () => {
  await assert.rejects(ensureBaseImage("bb-test-missing-base:none"), (e) => {
    assert.ok(isBbError(e));
    assert.equal(e.code, "DOCKER");
    assert.match(e.message, /bb-test-missing-base:none is not present/);
    assert.match(e.message, /scripts\/ensure-base-image\.sh/);
    return true;
  });
  assert.match(await ensureBaseImage(), /^sha256:/);
});
