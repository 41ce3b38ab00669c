// The justfile's recipe shell, as a test runner or an ssh session starts it.
import assert from "node:assert/strict";
import { test } from "node:test";
import process from "node:process";
import { join } from "node:path";
import { run } from "../lib/proc.ts";
import { tempDir } from "./support/tmp.ts";
import { REPO } from "./support/tools.ts";

test("a recipe run with a socket for stdin and no SHLVL (node's pipes, ssh) does not read the system bashrc", async (t) => {
  // bash takes such a start for a remote shell and reads bashrc files, where -u then fails
  // on the system bashrc's $PS1 ("PS1: unbound variable") before the recipe runs.
  const r = await run([join(REPO, "node_modules/.bin/just"), "--justfile", join(REPO, "justfile"), "list", "--json"], {
    replaceEnv: true,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, BB_STATE_DIR: await tempDir(t) },
    input: "",
    expect: [0, 1],
  });
  assert.doesNotMatch(r.stderr, /bashrc|unbound variable/, r.stderr);
});

test("just prepare agent=NAME hands a name that starts with - to bb-prepare as the agent's name, not as one of its options", async (t) => {
  const r = await run([join(REPO, "node_modules/.bin/just"), "--justfile", join(REPO, "justfile"), "prepare", "agent=--help"], {
    env: { BB_STATE_DIR: await tempDir(t) },
    input: "",
    expect: [0, 1, 2, 4],
  });
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /no agent named "--help"/);
  assert.equal(r.stdout, "");
});
