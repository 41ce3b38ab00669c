// scripts/test.mjs's end-of-run leak sweep, run for real: a nested run of one test file
// that leaks a container, beside a container of another run on the same engine.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { labelArgs, testLabels } from "../../lib/docker/labels.ts";
import { ANY_EXIT, run } from "../../lib/proc.ts";
import { BASE_IMAGE } from "../../lib/images/versions.ts";
import { tempDir } from "../support/tmp.ts";
import { REPO } from "../support/tools.ts";

const exists = async (name: string) => (await run(["docker", "container", "inspect", name], { expect: ANY_EXIT })).code === 0;

test("the test runner's leak sweep reports and removes its own run's leftovers and leaves another run's be", async (t) => {
  const id = randomBytes(4).toString("hex");
  const [mine, theirs] = [`bb-sweep-${id}-mine`, `bb-sweep-${id}-theirs`];
  t.after(() => run(["docker", "rm", "--force", mine, theirs], { expect: ANY_EXIT }));
  // Another run's (this one's, when scripts/test.mjs runs this file; a hand run's otherwise).
  await run(["docker", "run", "--detach", "--name", theirs, ...labelArgs(testLabels()), "--network", "none", BASE_IMAGE, "sleep", "600"]);
  const file = join(await tempDir(t), "leak.docker.test.ts");
  await writeFile(
    file,
    `import { execFileSync } from "node:child_process";
import { test } from "node:test";
test("leaks", () => {
  execFileSync("docker", ["run", "--detach", "--name", ${JSON.stringify(mine)}, "--label", "bot-bottle.test=1", "--label", "bot-bottle.test-suite=" + process.env.BB_TEST_SUITE, "--network", "none", ${JSON.stringify(BASE_IMAGE)}, "sleep", "600"]);
});
`,
  );
  // node, also under deno (whose execPath is deno). NODE_TEST_CONTEXT would make the nested node --test skip its files as a recursive run.
  const r = await run(["node", join(REPO, "scripts", "test.mjs"), "--runtime", "node", file], { expect: ANY_EXIT, env: { NODE_TEST_CONTEXT: undefined } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`LEAKED by the node run[^\\n]*\\n {2}\\w+ container ${mine}\\n`));
  assert.doesNotMatch(r.stderr, new RegExp(theirs));
  assert.match(r.stdout, /1 passed, 1 failed/);
  assert.equal(await exists(mine), false, "the run's own leak was left");
  assert.equal(await exists(theirs), true, "another run's container was removed");
});
