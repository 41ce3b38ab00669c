// scripts/test.mjs, run for real on files in which its runner finds no test: that run
// passed nothing, so the closing line must not read as a green run.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { ANY_EXIT, run } from "../../lib/proc.ts";
import { tempDir } from "../support/tmp.ts";
import { REPO } from "../support/tools.ts";

const testMjs = join(REPO, "scripts", "test.mjs");

test("a node run that skips every file (a recursive node --test run) fails the test command", async (t) => {
  const file = join(await tempDir(t), "one.test.ts");
  await writeFile(file, `import { test } from "node:test";\ntest("a", () => {});\n`);
  // NODE_TEST_CONTEXT is what makes node's runner skip every file it is given.
  const r = await run(["node", testMjs, "--runtime", "node", file], { expect: ANY_EXIT, env: { NODE_TEST_CONTEXT: "child-v8" } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /FAILED: the node run ran no test at all in 1 file\(s\)/);
  assert.match(r.stdout, /0 passed, 1 failed/);
  // The same file run normally passes: the failure above is the skipping, not the file.
  const ok = await run(["node", testMjs, "--runtime", "node", file], { expect: ANY_EXIT, env: { NODE_TEST_CONTEXT: undefined } });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /1 passed, 0 failed/);
});

test("a deno run that finds no test in its files fails the test command", async (t) => {
  const file = join(await tempDir(t), "none.test.ts");
  await writeFile(file, "export const nothing = 1;\n");
  const r = await run(["node", testMjs, "--runtime", "deno", file], { expect: ANY_EXIT });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /FAILED: the deno run ran no test at all in 1 file\(s\)/);
  assert.match(r.stdout, /0 passed, 1 failed/);
});
