// scripts/test.mjs over a dist/ older than its sources: the tools' tests run them from
// dist/ (bin/ falls back to source, slower, and the tests of the bundles themselves fail),
// so the runner builds first. Run for real, copied into a small checkout of its own, so
// the build it starts is that checkout's and never rewrites this one's dist/ mid-run.
import assert from "node:assert/strict";
import { copyFile, mkdir, symlink, utimes } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { ANY_EXIT, run } from "../../lib/proc.ts";
import { tempDir, writeTree } from "../support/tmp.ts";
import { REPO } from "../support/tools.ts";

/** A checkout with one tool, its bundle, one test, and a build that rewrites the bundle and says so. */
async function checkout(dir: string): Promise<string> {
  await writeTree(dir, {
    "tools/bb-x/main.ts": "export {};\n",
    "lib/x.ts": "export const x = 1;\n",
    "dist/bb-x.js": "// built\n",
    "one.test.ts": `import { test } from "node:test";\ntest("a", () => {});\n`,
    "package.json": JSON.stringify({ name: "stale-dist", private: true, scripts: { build: "node build.mjs" } }),
    "build.mjs": `import { existsSync, writeFileSync } from "node:fs";\nif (existsSync("broken")) process.exit(1);\nwriteFileSync("dist/bb-x.js", "// built\\n");\nconsole.log("BUILT");\n`,
  });
  await mkdir(join(dir, "scripts"));
  await copyFile(join(REPO, "scripts/test.mjs"), join(dir, "scripts/test.mjs"));
  await symlink(join(REPO, "node_modules"), join(dir, "node_modules"));
  await utimes(join(dir, "dist/bb-x.js"), new Date(1000), new Date(1000)); // older than every source
  return dir;
}

// Without NODE_TEST_CONTEXT: under node's runner it would make the inner run skip its file.
const testRun = (dir: string) =>
  run(["node", join(dir, "scripts/test.mjs"), "--runtime", "node", "one.test.ts"], { cwd: dir, expect: ANY_EXIT, timeoutMs: 120_000, env: { NODE_TEST_CONTEXT: undefined } });

test("a run over a dist/ older than its sources builds it first, says why, and then tests; over a fresh one it builds nothing", async (t) => {
  const dir = await checkout(await tempDir(t));
  const stale = await testRun(dir);
  assert.equal(stale.code, 0, stale.stderr);
  assert.match(stale.stderr, /^dist\/ is older than (lib\/x|tools\/bb-x\/main)\.ts: building it first \(npm run build\)$/m);
  assert.match(stale.stderr, /BUILT/, "the build's output goes to stderr, stdout is the runners'");
  assert.match(stale.stdout, /1 passed, 0 failed/);
  const fresh = await testRun(dir);
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.doesNotMatch(fresh.stderr, /building it first|BUILT/);
});

test("a bundle missing is built first too, and a build that fails ends the run before any test", async (t) => {
  const dir = await checkout(await tempDir(t));
  await writeTree(dir, { "tools/bb-y/main.ts": "export {};\n", broken: "" });
  const r = await testRun(dir);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^dist\/bb-y\.js is missing: building it first \(npm run build\)$/m);
  assert.match(r.stderr, /FAILED: npm run build failed, so the tests would run over an older dist\//);
  assert.doesNotMatch(r.stdout, /passed/);
});
