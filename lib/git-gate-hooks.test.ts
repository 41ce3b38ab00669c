import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gitGateHookFiles } from "./git-gate-hooks.ts";
import { formatArgv, run } from "./proc.ts";

describe("git-gate hook scripts", () => {
  let dir: string;
  let hook: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bb-hooks-test-"));
    hook = join(dir, "pre-receive");
    await writeFile(hook, gitGateHookFiles()["pre-receive"]!);
    await chmod(hook, 0o755);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("pre-receive refuses a push that did not come through git-gate (no BB_GIT_GATE_HOOK)", async () => {
    const r = await run([hook], { env: { BB_GIT_GATE_HOOK: undefined }, input: "0 1 refs/heads/main\n", expect: [1] });
    assert.match(r.stderr, /push refused: BB_GIT_GATE_HOOK is not set/);
  });

  it("pre-receive runs `$BB_GIT_GATE_HOOK hook pre-receive` with stdin, quoting intact, and returns its exit code", async () => {
    const cmd = formatArgv(["sh", "-c", 'printf "%s|" "$0" "$@"; cat; exit 3', "prog with space"]);
    const r = await run([hook], { env: { BB_GIT_GATE_HOOK: cmd }, input: "old new refs/heads/x\n", expect: [3] });
    assert.equal(r.stdout, "prog with space|hook|pre-receive|old new refs/heads/x\n");
  });
});
