import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { isBbError } from "../errors.ts";
import { createLogger } from "../log.ts";
import { agentTag, archOf } from "./ensure.ts";
import { sidecarContext } from "./sidecar.ts";

const tmp = mkdtempSync(join(tmpdir(), "bb-images-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const quiet = createLogger({ level: "silent" });

test("archOf() maps docker's CPU names to npm's and refuses others by name", () => {
  assert.equal(archOf("x86_64"), "x64");
  assert.equal(archOf("aarch64"), "arm64");
  assert.throws(() => archOf("s390x"), /runs on s390x/);
});

test("agentTag() changes with the Dockerfile and the arch, not otherwise", () => {
  const f = join(tmp, "Dockerfile.agent");
  writeFileSync(f, "FROM debian:bookworm-slim\n");
  const tag = agentTag(f, "x64");
  assert.equal(agentTag(f, "x64"), tag);
  assert.notEqual(agentTag(f, "arm64"), tag);
  writeFileSync(f, "FROM debian:bookworm-slim\nRUN true\n");
  assert.notEqual(agentTag(f, "x64"), tag);
});

test("sidecarContext() names each missing bundle and says to run npm run build", () => {
  const root = join(tmp, "repo");
  mkdirSync(join(root, "sidecar-image", "firewall"), { recursive: true });
  mkdirSync(join(root, "dist", "sidecar"), { recursive: true });
  writeFileSync(join(root, "sidecar-image", "Dockerfile"), "FROM debian:bookworm-slim\n");
  writeFileSync(join(root, "sidecar-image", "firewall", "main.ts"), "");
  writeFileSync(join(root, "dist", "sidecar", "firewall.js"), "");
  assert.throws(
    () => sidecarContext(root, quiet),
    (e) => {
      assert.ok(isBbError(e));
      assert.equal(e.code, "NOT_FOUND");
      assert.match(e.message, /missing dist\/sidecar\/firewall-scan-worker\.js, dist\/sidecar\/init\.js\)/);
      assert.match(e.message, /npm run build/);
      return true;
    },
  );
  writeFileSync(join(root, "dist", "sidecar", "init.js"), "");
  writeFileSync(join(root, "dist", "sidecar", "firewall-scan-worker.js"), "");
  const ctx = sidecarContext(root, quiet);
  assert.deepEqual(ctx.bundles, ["firewall-scan-worker.js", "firewall.js", "init.js"]);
});
