// --state-dir, $BB_STATE_DIR and --slug are read the same way by every tool that takes
// them: an empty root (which would mean the current folder), a file, or a slug that is not
// one is a usage error naming what was given, before anything is read or made.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "../../tests/support/tmp.ts";
import { runTool } from "../../tests/support/tools.ts";

test("a --state-dir or $BB_STATE_DIR that is empty or a file is refused with exit 2, by each tool that takes it", async (t) => {
  const file = join(await tempDir(t), "a-file");
  await writeFile(file, "x");
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    ["bb-list", ["--state-dir", file], {}, /--state-dir .*a-file is not a folder/],
    ["bb-list", ["--state-dir", ""], {}, /--state-dir is empty/],
    ["bb-list", [], { BB_STATE_DIR: "" }, /\$BB_STATE_DIR is empty: unset it or give the folder/],
    ["bb-cleanup", ["--dry-run"], { BB_STATE_DIR: file }, /\$BB_STATE_DIR .*a-file is not a folder/],
    ["bb-prepare", ["shell", "--state-dir", file], {}, /--state-dir .*a-file is not a folder/],
    ["bb-vm", ["exec", "--slug", "shell-x1y2", "--state-dir", file, "--", "true"], {}, /--state-dir .*a-file is not a folder/],
  ];
  for (const [tool, args, env, message] of cases) {
    const r = await runTool(tool, args, { env });
    assert.equal(r.code, 2, `${tool} ${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test("a state root that cannot be made, or whose bottles/ is a file, is one usage error naming the root as it was given", async (t) => {
  const root = await tempDir(t);
  await writeFile(join(root, "bottles"), "x");
  // No engine to ask: the state dirs are read all the same (docker answers nothing here).
  const noEngine = { DOCKER_HOST: "unix:///nonexistent/docker.sock" };
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    // Below /proc no folder can be made although /proc is there.
    ["bb-prepare", ["shell"], { BB_STATE_DIR: "/proc/bb-no-such" }, /^bb-prepare: error: \$BB_STATE_DIR \/proc\/bb-no-such cannot be made: no such file or directory$/m],
    ["bb-prepare", ["shell", "--state-dir", join(root, "bottles", "x")], {}, /^bb-prepare: error: --state-dir .*\/bottles\/x cannot be made: .*\/bottles is not a folder$/m],
    ["bb-prepare", ["shell"], { BB_STATE_DIR: root }, /^bb-prepare: error: \$BB_STATE_DIR .*: bottles is not a folder$/m],
    ["bb-prepare", ["shell", "--identity", "shell-x1y2", "--state-dir", root], {}, /^bb-prepare: error: --state-dir .*: bottles is not a folder$/m],
    ["bb-list", ["--all"], { BB_STATE_DIR: root, ...noEngine }, /^bb-list: error: \$BB_STATE_DIR .*: bottles is not a folder$/m],
    ["bb-cleanup", ["--dry-run", "--state-dir", root], noEngine, /^bb-cleanup: error: --state-dir .*: bottles is not a folder$/m],
  ];
  for (const [tool, args, env, message] of cases) {
    const r = await runTool(tool, args, { env });
    assert.equal(r.code, 2, `${tool} ${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /ENOENT|ENOTDIR/);
  }
});

test("--slug is checked as a slug, and cannot be given with --plan", async (t) => {
  const state = await tempDir(t);
  for (const tool of [["bb-vm", "exec"], ["bb-supervise", "list"]]) {
    const bad = await runTool(tool[0]!, [tool[1]!, "--slug", "../../../../tmp", "--state-dir", state, ...(tool[1] === "exec" ? ["--", "true"] : [])]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--slug "\.\.\/\.\.\/\.\.\/\.\.\/tmp" is not a valid slug/);
  }
  const both = await runTool("bb-vm", ["exec", "--slug", "shell-x1y2", "--plan", join(state, "plan.json"), "--state-dir", state, "--", "true"]);
  assert.equal(both.code, 2, both.stderr);
  assert.match(both.stderr, /--slug and --plan both name a bottle: give one/);
});
