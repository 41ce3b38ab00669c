// The justfile's recipe shell, as a test runner or an ssh session starts it.
import assert from "node:assert/strict";
import { test } from "node:test";
import process from "node:process";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ANY_EXIT, run } from "../lib/proc.ts";
import { skipWhen } from "./support/skip.ts";
import { tempDir } from "./support/tmp.ts";
import { pathWithout, REPO } from "./support/tools.ts";

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

const justIn = (cwd: string, args: string[], env: Record<string, string>) =>
  run([join(REPO, "node_modules/.bin/just"), "--justfile", join(REPO, "justfile"), ...args], { cwd, env, input: "", expect: ANY_EXIT });

test("just list and supervise read a relative path (--plan, --state-dir, $BB_STATE_DIR) from the folder just was run in, not from the checkout", async (t) => {
  const caller = await tempDir(t);
  await mkdir(join(caller, "state"), { mode: 0o700 });
  const prepared = await run([join(REPO, "bin/bb-prepare"), "shell", "--state-dir", join(caller, "state")], { expect: ANY_EXIT });
  assert.equal(prepared.code, 0, prepared.stderr);
  const slug = (JSON.parse(prepared.stdout) as { slug: string }).slug;
  await writeFile(join(caller, "plan.json"), prepared.stdout);
  const env = { BB_STATE_DIR: "state" };

  const asked = await justIn(caller, ["supervise", "--plan", "plan.json", "list", "--json"], env);
  assert.equal(asked.code, 0, asked.stderr);
  assert.equal(asked.stdout.trim(), "[]");
  // bb-list exits 1 (and says so) without a Docker engine; the state dirs are listed all the same.
  // Other state roots' bottles on the engine are listed too: ours is the one with our state dir.
  const ours = (out: string) => (JSON.parse(out) as { stateDir: string | null }[]).filter((b) => b.stateDir?.startsWith(caller)).map((b) => b.stateDir);
  const listed = await justIn(caller, ["list", "--json"], env);
  assert.deepEqual(ours(listed.stdout), [join(caller, "state", "bottles", slug)], listed.stderr);
  const byFlag = await justIn(caller, ["list", "--json", "--state-dir", "state"], { BB_STATE_DIR: join(caller, "elsewhere") });
  assert.deepEqual(ours(byFlag.stdout), [join(caller, "state", "bottles", slug)], byFlag.stderr);
  assert.ok(!existsSync(join(REPO, "state")), "a state root was made in the checkout");
});

// bb-cleanup removes nothing, and plans nothing, while it cannot ask docker which bottles live.
const noEngine = (await run(["docker", "info", "--format", "{{.ServerVersion}}"], { expect: ANY_EXIT }).catch(() => ({ code: 1 }))).code !== 0 && "no Docker engine answers";

test("just cleanup reads a relative $BB_STATE_DIR from the folder just was run in", skipWhen(noEngine, "just cleanup and a relative state dir"), async (t) => {
  const caller = await tempDir(t);
  await mkdir(join(caller, "state"), { mode: 0o700 });
  const prepared = await run([join(REPO, "bin/bb-prepare"), "shell", "--state-dir", join(caller, "state")], { expect: ANY_EXIT });
  assert.equal(prepared.code, 0, prepared.stderr);
  const slug = (JSON.parse(prepared.stdout) as { slug: string }).slug;
  const cleanup = await justIn(caller, ["cleanup", "--dry-run", "--json"], { BB_STATE_DIR: "state" });
  assert.match(cleanup.stdout, new RegExp(slug), cleanup.stderr);
  assert.ok(!existsSync(join(REPO, "state")), "a state root was made in the checkout");
});

test("just start and just run read a relative $BB_STATE_DIR from the folder just was run in", async (t) => {
  const caller = await tempDir(t);
  const r = await justIn(caller, ["start", "slug=nowhere-1"], { BB_STATE_DIR: "state" });
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim(), `just start: there is no bottle nowhere-1 in ${caller}/state (bb-list shows them); to start a new bottle under that slug, add agent=NAME`);
});

test("just bench's usage error is one line that names it (no just 'recipe failed' line after it), for a subcommand's option too", async (t) => {
  const caller = await tempDir(t);
  const runs = await justIn(caller, ["bench", "start", "--runs", "x"], {});
  assert.equal(runs.code, 2, runs.stderr);
  assert.equal(runs.stderr.trim(), 'bench: error: --runs wants a whole number >= 1, got "x"');
  const duration = await justIn(caller, ["bench", "proxy", "--duration"], {});
  assert.equal(duration.code, 2, duration.stderr);
  assert.equal(duration.stderr.split("\n")[0], "bench: error: option '--duration <seconds>' argument missing");
  assert.doesNotMatch(duration.stderr, /recipe `bench` failed/);
});

test("just prepare names the word you typed (backend=, cwd=, manifest=) in one line when it is wrong, not the bb-prepare flag it becomes", async (t) => {
  const caller = await tempDir(t);
  const env = { BB_STATE_DIR: join(caller, "state") };
  const cases: [string, string][] = [
    ["backend=vm", "just prepare: backend=vm is not a backend (docker or smolmachines)"],
    ["cwd=nope", "just prepare: cwd=nope is not a directory"],
    ["manifest=nope", "just prepare: manifest=nope is not a directory"],
  ];
  for (const [word, line] of cases) {
    const r = await justIn(caller, ["prepare", "agent=shell", word], env);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `${line}\n`);
    assert.ok(!existsSync(join(caller, "state")), `${word}: a state root was made`);
  }
});

test("just start given a command (as just run takes one) says where a command goes", async (t) => {
  const caller = await tempDir(t);
  const r = await justIn(caller, ["start", "agent=shell", "yes=true", "--", "ls", "-l"], { BB_STATE_DIR: join(caller, "state") });
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr, "just start: unknown argument 'ls' (just start attaches the agent and takes no command; to run one: just run agent=shell -- ls ...)\n");
  // A key written without its value is not taken for a command.
  const bare = await justIn(caller, ["start", "agent=shell", "keep"], { BB_STATE_DIR: join(caller, "state") });
  assert.match(bare.stderr, /^just start: unknown argument 'keep' \(did you mean keep=\.\.\.\?\)/);
  assert.ok(!existsSync(join(caller, "state")), "a state root was made");
});

test("--help of just start, run, prepare and test prints what to type and starts nothing (it was an unknown argument, a missing agent=, or a test file)", async (t) => {
  const caller = await tempDir(t);
  const env = { BB_STATE_DIR: join(caller, "state") };
  for (const [recipe, first] of [["start", "usage: just start agent=NAME"], ["run", "usage: just run agent=NAME"], ["prepare", "usage: just prepare agent=NAME"]]) {
    const r = await justIn(caller, [recipe!, "--help"], env);
    assert.equal(r.code, 0, `${recipe}: ${r.stderr}`);
    assert.ok(r.stdout.startsWith(first!), `${recipe}: ${r.stdout}`);
  }
  assert.ok(!existsSync(join(caller, "state")), "a state root was made");
  const tests = await run(["node", join(REPO, "scripts/test.mjs"), "--help"], { expect: ANY_EXIT });
  assert.equal(tests.code, 0, tests.stderr);
  assert.match(tests.stdout, /^usage: just test /);
  assert.doesNotMatch(tests.stderr, /=== node --test/);
  for (const args of [["--teir", "unit"], ["--tier", "units"], ["--tier"], ["no-such.test.ts"]]) {
    const bad = await run(["node", join(REPO, "scripts/test.mjs"), ...args], { expect: ANY_EXIT });
    assert.equal(bad.code, 2, `${args}: ${bad.stderr}`);
    assert.match(bad.stderr, /^test: .*\(usage: just test /, `${args}`);
  }
});

test("just start and just run with backend=smolmachines and no smolvm on PATH stop before anything is prepared, naming it", async (t) => {
  const state = await tempDir(t);
  const path = pathWithout("smolvm");
  for (const args of [["run", "agent=shell", "backend=smolmachines", "--", "true"], ["start", "agent=shell", "backend=smolmachines", "yes=true"]]) {
    const r = await run([join(REPO, "node_modules/.bin/just"), "--justfile", join(REPO, "justfile"), ...args], { env: { PATH: path, BB_STATE_DIR: state }, input: "", expect: ANY_EXIT });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, `just ${args[0]}: backend=smolmachines runs the agent with smolvm, which is not on PATH: install it (README, smolmachines), or leave backend= out for docker\n`);
    assert.ok(!existsSync(join(state, "bottles")), "a bottle was prepared");
  }
});
