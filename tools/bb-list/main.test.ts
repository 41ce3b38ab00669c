import assert from "node:assert/strict";
import { test } from "node:test";
import { runTool } from "../../tests/support/tools.ts";

test("bb-list --help shows every flag and the exit-code table", async () => {
  const r = await runTool("bb-list", ["--help"]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, "");
  for (const flag of ["--json", "--all", "--state-dir <dir>", "--filter-label <key=value>"]) assert.ok(r.stderr.includes(flag), flag);
  assert.match(r.stderr, /Exit codes:\n\s+0\s+ok\n\s+1\s+failure/);
  assert.match(r.stderr, /Environment:\n\s+BB_DOCKER_TIMEOUT\s+seconds a docker call that should answer at once/);
});
