// The user-facing flow against a real Docker engine: `just run`, `just start` under a real
// terminal, the y/N guard, resume by slug, `cwd=`, and forward_host_credentials.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { labelArgs, testLabels } from "../../lib/docker/labels.ts";
import { run, start, ANY_EXIT } from "../../lib/proc.ts";
import { writeRequest } from "../../lib/supervise/queue.ts";
import { hangingEngine, realEngineSocket } from "../support/hanging-engine.ts";
import { folderState } from "../support/folder-state.ts";
import { holdDecisionLock } from "../support/held-lock.ts";
import { bottleResources } from "../support/leftovers.ts";
import { tempDir, writeTree } from "../support/tmp.ts";
import { REPO } from "../support/tools.ts";
import type { TestContext } from "node:test";


async function flowEnv(t: TestContext, extra: Record<string, string> = {}) {
  // One hook, in this order: the bottles go before their state dir (bb-cleanup judges them
  // by it), each by --slug so that one a failed test left live (its flow still running, or
  // gone with the state dir's owner record) is removed too.
  const state = await mkdtemp(join(tmpdir(), "bb-flow-state-"));
  t.after(async () => {
    const cleanup = (args: string[]) => run([join(REPO, "bin/bb-cleanup"), "--yes", "--grace", "0", "-q", "--state-dir", state, "--filter-label", "bot-bottle.test=1", ...args], { expect: ANY_EXIT });
    for (const slug of await readdir(join(state, "bottles")).catch(() => [])) await cleanup(["--slug", slug]);
    await cleanup([]);
    await rm(state, { recursive: true, force: true });
  });
  return { state, env: { BB_STATE_DIR: state, BB_TEST_LABEL: "1", ...extra } };
}

const just = (args: string[], env: Record<string, string>, input?: string) =>
  run([join(REPO, "node_modules/.bin/just"), "--justfile", join(REPO, "justfile"), ...args], { env, expect: ANY_EXIT, input, timeoutMs: 300_000 });

/** Run a command under a real pseudo-terminal (util-linux `script`), typing `input`. */
const inTty = (cmd: string, env: Record<string, string>, input: string) =>
  run(["script", "-qefc", cmd, "/dev/null"], { env, expect: ANY_EXIT, input, timeoutMs: 300_000 });

/** Start a command under a real pseudo-terminal, with its stdin open for typing and what it prints gathered. */
function startInTty(t: TestContext, cmd: string, env: Record<string, string>) {
  const term = start(["script", "-qefc", cmd, "/dev/null"], { env, stdio: ["pipe", "pipe", "ignore"] });
  t.after(() => void term.kill("SIGKILL"));
  let out = "";
  term.stdout!.on("data", (b: Buffer) => (out += b));
  const closed = new Promise((r) => term.on("close", r));
  return { term, closed, output: () => out };
}

const slugOf = (stderr: string) => /bot-bottle preflight: (\S+)/.exec(stderr)?.[1] ?? "";

/** `just run agent=shell -- sleep 600` started through flow.sh, once the sleep runs in the
 * agent container. Should the flow outlive the test, its bottle goes too (flowEnv's
 * cleanup ran first, and kept it live). */
async function flowRunningSleep(t: TestContext, env: Record<string, string>) {
  const flow = start([join(REPO, "scripts/flow.sh"), "run", "agent=shell", "--", "sleep", "600"], { env, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  flow.stderr!.on("data", (b: Buffer) => (err += b));
  const exited = new Promise<number | null>((r) => flow.on("close", (code) => r(code)));
  t.after(async () => {
    if (flow.exitCode !== null || flow.signalCode !== null) return;
    flow.kill("SIGKILL");
    await run([join(REPO, "bin/bb-cleanup"), "--yes", "--grace", "0", "-q", "--state-dir", env.BB_STATE_DIR!, "--filter-label", "bot-bottle.test=1"], { expect: ANY_EXIT });
  });
  for (let i = 0; i < 1200; i++) {
    if (slugOf(err) && (await run(["docker", "top", `bb-${slugOf(err)}-agent`], { expect: ANY_EXIT })).stdout.includes("sleep 600")) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { flow, exited, slug: slugOf(err), err: () => err };
}

async function leftovers(slug: string): Promise<string[]> {
  const { containers, networks, volumes } = await bottleResources(slug);
  return [...containers, ...networks, ...volumes];
}

test("just run: the command's exit code comes back and the bottle is gone afterwards", async (t) => {
  const { state, env } = await flowEnv(t);
  const r = await just(["run", "agent=shell", "--", "sh", "-c", "test \"$(id -un)\" = node && curl -s -o /dev/null -w '%{http_connect}' https://blocked.invalid/; exit 7"], env);
  assert.equal(r.code, 7, r.stderr);
  assert.doesNotMatch(r.stderr, /recipe `run` failed/, "the command's own exit code is not reported as a just error");
  assert.equal(r.stdout, "403", "the firewall answers CONNECT to an undeclared host with 403");
  const slug = slugOf(r.stderr);
  assert.match(slug, /^shell-/);
  assert.deepEqual(await leftovers(slug), []);
  assert.ok(!existsSync(join(state, "bottles", slug)), "state dir left behind");
  // A command that is not there exits 127, as in a shell (docker exec alone says 126).
  const missing = await just(["run", "agent=shell", "--", "no-such-command", "--flag"], env);
  assert.equal(missing.code, 127, missing.stderr);
  assert.match(missing.stderr, /no-such-command: not found/);

});

test("an unknown argument is refused before anything starts, with each mode's own arguments listed", async (t) => {
  const { state, env } = await flowEnv(t);
  const start = await just(["start", "agent=shell", "bogus=1"], env);
  assert.equal(start.code, 2);
  assert.equal(start.stderr.trim(), "just start: unknown argument 'bogus=1' (expected agent=NAME [backend=docker|smolmachines] [yes=true] [cwd=DIR] [slug=SLUG] [keep=true] [manifest=DIR])");
  const run = await just(["run", "agent=shell", "bogus=1", "--", "true"], env);
  assert.equal(run.code, 2);
  assert.equal(run.stderr.trim(), "just run: unknown argument 'bogus=1' (expected agent=NAME [backend=docker|smolmachines] [cwd=DIR] [manifest=DIR] -- CMD)");
  // Values are checked in the words you typed, not as the flags they become.
  for (const [arg, message] of [
    ["backend=vmware", "just start: backend=vmware is not a backend (docker or smolmachines)"],
    ["cwd=/nonexistent", "just start: cwd=/nonexistent is not a directory"],
    ["slug=Bad_Slug", "just start: slug=Bad_Slug is not a slug (lower-case letters, digits and -, as bb-list shows them)"],
  ]) {
    const r = await just(["start", "agent=shell", "yes=true", arg!], env);
    assert.equal(r.code, 2, arg);
    assert.equal(r.stderr.trim(), message);
  }
  for (const [args, message] of [
    [["start", "agent=shell", "yes=true", "keep=yes"], "just start: keep=yes is not true or false"],
    [["start", "agent=shell", "yes=1"], "just start: yes=1 is not true or false"],
    [["run", "agent=shell", "slug=shell-x1y2", "--", "true"], "just run: slug= is for just start (run starts a fresh bottle, runs the command without asking, and always tears it down)"],
    [["run", "agent=shell", "keep=true", "--", "true"], "just run: keep= is for just start (run starts a fresh bottle, runs the command without asking, and always tears it down)"],
    [["run", "agent=shell", "--bogus", "--", "true"], "just run: unknown argument '--bogus' (the command comes after --: just run agent=shell -- CMD; just keeps the first -- for itself, so a command that starts with - needs two: just run agent=shell -- -- --bogus)"],
    [["start", "agent=shell", "manifest=no-such-dir"], `just start: manifest=${process.cwd()}/no-such-dir is not a directory`],
  ] as const) {
    const r = await just([...args], env);
    assert.equal(r.code, 2, args.join(" "));
    assert.equal(r.stderr.trim(), message);
  }
  const bare = await just(["start", "shell"], env);
  assert.match(bare.stderr, /unknown argument 'shell' \(did you mean agent=shell\?\)/);
  // A name that starts with - is still a name to bb-prepare, not one of its options (--help).
  const dashed = await just(["start", "agent=--help", "yes=true"], env);
  assert.equal(dashed.code, 4, dashed.stderr);
  assert.match(dashed.stderr, /no agent named "--help"/);
  // An empty BB_STATE_DIR is refused as every tool refuses it, not taken for the default root.
  const empty = await just(["run", "agent=shell", "--", "true"], { ...env, BB_STATE_DIR: "" });
  assert.equal(empty.code, 2, empty.stderr);
  assert.equal(empty.stderr.trim(), "just run: $BB_STATE_DIR is empty: unset it or give the folder bot-bottle keeps its bottles in");
  assert.ok(!existsSync(join(state, "bottles")), "nothing was prepared");
});

test("manifest=DIR reads your own agents; just run takes FOO=1 as the start of the command; cwd= and manifest= are read from where just ran", async (t) => {
  const { env } = await flowEnv(t);
  const dir = await writeTree(await tempDir(t), {
    "m/agents/mine.md": "---\nprovider: shell\nbottle: plain\n---\n",
    "m/plain.md": "---\nsupervise: false\n---\n",
    "project/marker.txt": "mine\n",
  });
  const r = await just(["run", "agent=mine", `manifest=${dir}/m`, "--", "FOO=from-the-command", "sh", "-c", "echo $FOO"], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), "from-the-command");
  assert.match(r.stderr, /agent\s+mine \(shell\)/);
  // After a second -- (just keeps the first) a word starting with - is the command: sh finds no "-x" to run.
  const dashed = await just(["run", "agent=mine", `manifest=${dir}/m`, "--", "--", "-x"], env);
  assert.equal(dashed.code, 127, dashed.stderr);
  // just runs recipes in the checkout; "." must still be the folder you were in.
  const here = await run([join(REPO, "node_modules/.bin/just"), "--justfile", join(REPO, "justfile"), "run", "agent=mine", "manifest=../m", "cwd=.", "--", "ls", "/home/node/work"], {
    cwd: join(dir, "project"),
    env,
    expect: ANY_EXIT,
    timeoutMs: 300_000,
  });
  assert.equal(here.code, 0, here.stderr);
  assert.equal(here.stdout.trim(), "marker.txt", "cwd=. copied another folder than the one just ran in");
});

test("just start without a terminal: refused before preparing anything without yes=true; with it, the agent runs on the piped input, warned", async (t) => {
  const { state, env } = await flowEnv(t);
  const r = await just(["start", "agent=shell"], env);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no terminal to ask y\/N on; pass yes=true/);
  assert.doesNotMatch(r.stderr, /preflight/);
  assert.ok(!existsSync(join(state, "bottles")) || (await readdir(join(state, "bottles"))).length === 0);

  // With yes=true it starts, says the agent has no terminal and how to script instead.
  const piped = await just(["start", "agent=shell", "yes=true"], env, "echo piped-$((6*7)); exit 3\n");
  assert.equal(piped.code, 3, piped.stderr);
  assert.equal(piped.stdout, "piped-42\n");
  assert.match(piped.stderr, /attach: no terminal \(stdin or stdout is not one\), so shell runs without a TTY; to script a bottle, use: just run agent=shell -- CMD/);
  assert.deepEqual(await leftovers(slugOf(piped.stderr)), []);
});

test("just start attaches bash on a real terminal, tears down on exit, and y/N 'n' starts nothing", async (t) => {
  const { state, env } = await flowEnv(t);
  const r = await inTty(`${REPO}/node_modules/.bin/just --justfile ${REPO}/justfile start agent=shell yes=true`, env, "echo hi-from-$((6*7))\nexit 5\n");
  assert.equal(r.code, 5, r.stdout);
  assert.match(r.stdout, /hi-from-42/);
  const slug = slugOf(r.stdout);
  assert.match(r.stdout, new RegExp(`when the agent asks for a host or a question: just supervise --slug ${slug} list`));
  assert.deepEqual(await leftovers(slug), []);
  const no = await inTty(`${REPO}/node_modules/.bin/just --justfile ${REPO}/justfile start agent=shell`, env, "n\n");
  assert.equal(no.code, 1);
  assert.match(no.stdout, /not started/);
  assert.doesNotMatch(no.stdout, /tearing down/, "a bottle never started is not torn down");
  assert.deepEqual(await leftovers(slugOf(no.stdout)), []);
  assert.ok(!existsSync(join(state, "bottles", slugOf(no.stdout))));
});

test("Ctrl-C through npx's just (a Node wrapper that then sends just a SIGTERM), at the y/N or while the bottle starts, leaves nothing behind", async (t) => {
  for (const when of ["at the y/N", "while the bundle starts", "while provisioning"] as const) {
    const { env } = await flowEnv(t);
    const ask = when === "at the y/N" ? "" : " yes=true";
    const { term, closed, output } = startInTty(t, `${REPO}/node_modules/.bin/just --justfile ${REPO}/justfile start agent=shell${ask}`, env);
    const until = async (what: string, ok: () => Promise<boolean> | boolean) => {
      for (let i = 0; i < 1200; i++) if (await ok()) return;
      else await new Promise((r) => setTimeout(r, 50));
      assert.fail(`${when}: never saw ${what}:\n${output()}`);
    };
    await until("the preflight", () => slugOf(output()) !== "");
    const slug = slugOf(output());
    const dir = join(env.BB_STATE_DIR!, "bottles", slug);
    if (when === "at the y/N") await until("the question", () => output().includes("Start this bottle? [y/N]"));
    else if (when === "while the bundle starts") await until("the bundle container", async () => (await leftovers(slug)).some((n) => n.endsWith("-bundle")));
    else await until("bb-provision at work", async () => (await run(["pgrep", "-f", `bb-provision`], { expect: ANY_EXIT })).code === 0 && (await leftovers(slug)).some((n) => n.endsWith("-agent")));
    term.stdin!.write("\x03");
    await closed; // the wrapper exits at once; the flow's teardown goes on without it
    await until("the bottle gone", async () => !existsSync(dir) && (await leftovers(slug)).length === 0);
    assert.doesNotMatch(output(), /teardown of .* was incomplete/, output());
  }
});

/** PATH as it is, but with every directory that holds setsid(1) replaced by a copy (of
 * links) without it: the flow as it runs on macOS. */
async function pathWithoutSetsid(t: TestContext): Promise<string> {
  const dirs: string[] = [];
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (!dir || !existsSync(join(dir, "setsid"))) {
      dirs.push(dir);
      continue;
    }
    const shadow = await tempDir(t, "bb-no-setsid-");
    for (const name of await readdir(dir)) if (name !== "setsid") await symlink(join(dir, name), join(shadow, name));
    dirs.push(shadow);
  }
  return dirs.join(":");
}

for (const variant of ["setsid(1)", "own-session.pl (no setsid, as on macOS)"] as const) {
  test(`a teardown under way finishes whatever signal follows the one that started it (just's SIGTERM after a Ctrl-C, a closed terminal's HUP), in its own session by ${variant}`, async (t) => {
    const { env } = await flowEnv(t);
    const flowEnvVars: Record<string, string> = variant === "setsid(1)" ? env : { ...env, PATH: await pathWithoutSetsid(t) };
    // Its own process group, as a terminal's foreground job (this test's setsid, found on
    // the test's own PATH).
    const setsid = (process.env.PATH ?? "").split(":").map((d) => join(d, "setsid")).find((f) => existsSync(f))!;
    const flow = start([setsid, join(REPO, "scripts/flow.sh"), "run", "agent=shell", "--", "sleep", "600"], { env: flowEnvVars, stdio: ["ignore", "ignore", "pipe"] });
    t.after(() => void flow.kill("SIGKILL"));
    let err = "";
    flow.stderr!.on("data", (b: Buffer) => (err += b));
    const exited = new Promise<number | null>((r) => flow.on("close", (code) => r(code)));
    const until = async (what: string, ok: () => Promise<boolean> | boolean) => {
      for (let i = 0; i < 1200; i++) if (await ok()) return;
      else await new Promise((r) => setTimeout(r, 50));
      assert.fail(`never saw ${what}:\n${err}`);
    };
    await until("the command run", async () => slugOf(err) !== "" && (await run(["docker", "top", `bb-${slugOf(err)}-agent`], { expect: ANY_EXIT })).stdout.includes("sleep 600"));
    const slug = slugOf(err);
    await run(["kill", "-s", "INT", "--", `-${flow.pid}`]);
    await until("the teardown start", () => err.includes(`» tearing down ${slug}`));
    await run(["kill", "-s", "TERM", String(flow.pid)]);
    // A closed terminal hangs up its whole foreground group: not the teardown's bb-cleanup.
    // The tool itself (node running it), not a wrapper on its way to starting it.
    const tool = `bb-cleanup(\\.js|/main\\.ts) .*--slug ${slug}`;
    await until("the teardown's bb-cleanup", async () => (await run(["pgrep", "-f", tool], { expect: ANY_EXIT })).code === 0);
    const wrapped = (await run(["pgrep", "-f", `own-session\\.pl bb-cleanup .*--slug ${slug}`], { expect: ANY_EXIT })).code === 0;
    assert.equal(wrapped, variant !== "setsid(1)", "the teardown took its session another way than expected");
    await run(["kill", "-s", "HUP", "--", `-${flow.pid}`]);
    assert.equal(await exited, 130, err);
    assert.deepEqual(await leftovers(slug), [], "the flow ended before its teardown did");
    assert.ok(!existsSync(join(env.BB_STATE_DIR!, "bottles", slug)));
  });
}

test("SIGTERM to the flow alone (kill PID; just passes its own on that way) tears the bottle down now, not when the command ends", async (t) => {
  const { env } = await flowEnv(t);
  const { flow, exited, slug, err } = await flowRunningSleep(t, env);
  // kill(1), as a user does (Deno reports a child it signalled itself as killed, whatever its trap did).
  await run(["kill", "-s", "TERM", String(flow.pid)]);
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("still running after 60 s"), 60_000).unref())]);
  assert.equal(code, 143, err());
  // The session's end is the flow's own teardown, which it says: no blame on anyone else.
  assert.match(err(), new RegExp(`» tearing down ${slug}`));
  assert.doesNotMatch(err(), /not by this start flow|error:/);
  assert.deepEqual(await leftovers(slug), []);
  assert.ok(!existsSync(join(env.BB_STATE_DIR!, "bottles", slug)));
});

test("an agent container removed from outside the flow: its command ends, the flow says so (not that it removed it), and tears the rest down", async (t) => {
  const { env } = await flowEnv(t);
  const { exited, slug, err } = await flowRunningSleep(t, env);
  await run(["docker", "rm", "--force", `bb-${slug}-agent`]);
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("still running after 60 s"), 60_000).unref())]);
  assert.equal(code, 137, err()); // the command's own: killed with its container
  assert.match(err(), new RegExp(`error: bottle ${slug}: its agent container bb-${slug}-agent (is being removed|is gone), not by this start flow \\(docker rm, or bb-cleanup --slug ${slug}\\); the flow now tears the rest of the bottle down`));
  assert.match(err(), new RegExp(`» tearing down ${slug}`));
  assert.deepEqual(await leftovers(slug), []);
  assert.ok(!existsSync(join(env.BB_STATE_DIR!, "bottles", slug)));
});

test("a teardown the Docker engine stops answering ends anyway: its removals give up after BB_DOCKER_TIMEOUT, the flow says the teardown was incomplete, and bb-cleanup removes the rest later", async (t) => {
  const { state, env } = await flowEnv(t);
  // The real engine behind a socket that answers everything but a removal (DELETE).
  const engine = await hangingEngine(t, { via: realEngineSocket(), hangOn: /^DELETE / });
  const r = await just(["run", "agent=shell", "--", "sh", "-c", "exit 3"], { ...env, DOCKER_HOST: engine.host, BB_DOCKER_TIMEOUT: "2" });
  assert.equal(r.code, 3, r.stderr);
  const slug = slugOf(r.stderr);
  // By the ID bb-cleanup found it under: a container made since under that name is not this one.
  assert.match(r.stderr, new RegExp(`could not remove container bb-${slug}-agent .*the Docker engine did not answer \`docker rm --force --volumes [0-9a-f]{64}\` within 2 s`));
  assert.match(r.stderr, new RegExp(`warning: teardown of ${slug} was incomplete; run: bb-cleanup`));
  // The two containers' removals waited out the limit; the networks' were not asked.
  assert.equal(engine.held.length, 2, engine.held.join("\n"));
  assert.match(r.stderr, new RegExp(`could not remove network bb-${slug}-int .*not asked: the Docker engine did not answer`));
  assert.equal((await leftovers(slug)).length, 4);
  assert.ok(existsSync(join(state, "bottles", slug)), "the state dir goes last, once the rest has");
  // `bb-cleanup`, as the warning says: this flow has exited, so its bottle is an orphan.
  const later = await run([join(REPO, "bin/bb-cleanup"), "--yes", "--state-dir", state, "--filter-label", "bot-bottle.test=1"], { expect: ANY_EXIT });
  assert.equal(later.code, 0, later.stderr);
  assert.deepEqual(await leftovers(slug), []);
  assert.ok(!existsSync(join(state, "bottles", slug)));
});

test("a start the Docker engine stops answering ends anyway: the step waiting on it gives up after BB_DOCKER_TIMEOUT naming the call, and the teardown removes the rest", async (t) => {
  const { state, env } = await flowEnv(t);
  // The real engine behind a socket that never answers one request of the start: the
  // agent container's creation (bb-vm), or the bundle's readiness probe (an exec, whose
  // long script the error does not quote; its limit adds the probe's 2 s wait in the bundle).
  const cases = [
    { hangOn: /^POST \/v[\d.]+\/containers\/create\?name=bb-[a-z0-9-]+-agent$/i, error: (slug: string) => `error: Cannot start container bb-${slug}-agent: the Docker engine did not answer \`docker run --detach --name bb-${slug}-agent .*\` within 2 s` },
    { hangOn: /^POST \/v[\d.]+\/containers\/bb-[a-z0-9-]+-bundle\/exec$/i, error: (slug: string) => `error: Cannot ask bundle bb-${slug}-bundle which daemons are up: the Docker engine did not answer \`docker exec bb-${slug}-bundle sh -c <the readiness probe>\` within [34](\\.\\d+)? s\\.` },
  ];
  for (const { hangOn, error } of cases) {
    const engine = await hangingEngine(t, { via: realEngineSocket(), hangOn });
    const r = await run([join(REPO, "node_modules/.bin/just"), "--justfile", join(REPO, "justfile"), "run", "agent=shell", "--", "true"], {
      env: { ...env, DOCKER_HOST: engine.host, BB_DOCKER_TIMEOUT: "2" },
      expect: ANY_EXIT,
      timeoutMs: 90_000, // without the limit, the step waits for docker forever
    });
    assert.equal(r.code, 124, r.stderr); // timed out, as the exit-code table says
    const slug = slugOf(r.stderr);
    assert.equal(engine.held.length, 1, engine.held.join("\n"));
    assert.match(r.stderr, new RegExp(error(slug)));
    assert.match(r.stderr, new RegExp(`» tearing down ${slug}`));
    assert.deepEqual(await leftovers(slug), []);
    assert.ok(!existsSync(join(state, "bottles", slug)));
    assert.equal(await engine.clientsClosed(), 0);
  }
});

/** `just start agent=shell` on a real terminal, once the agent's session holds it raw:
 * the terminal's modes before and after the flow (read("before"), read("after")), its exit
 * code (read("code")), and the flow's pid, written down first (exec keeps it), for kill(1). */
async function rawSession(t: TestContext, env: Record<string, string>) {
  const dir = await tempDir(t, "bb-flow-tty-");
  const at = (name: string) => join(dir, name);
  const inner = `echo $$ > ${at("pid")}; exec ${join(REPO, "scripts/flow.sh")} start agent=shell yes=true`;
  const { closed, output } = startInTty(t, `tty > ${at("tty")}; stty -a > ${at("before")}; sh -c '${inner}'; echo $? > ${at("code")}; stty -a > ${at("after")}`, env);
  const read = (name: string) => readFile(at(name), "utf8").catch(() => "");
  const modesNow = async () => {
    const tty = (await read("tty")).trim();
    return tty ? (await run(["stty", "-a", "-F", tty], { expect: ANY_EXIT })).stdout : "";
  };
  // docker exec -it sets the terminal raw once the session is attached.
  for (let i = 0; i < 1200 && !/ -icanon /.test(await modesNow()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(await modesNow(), / -icanon /, `the session never set the terminal raw:\n${output()}`);
  assert.match(await read("before"), / icanon /, "the terminal was cooked before the flow");
  const ended = () => Promise.race([closed, new Promise((r) => setTimeout(r, 60_000).unref())]);
  return { output, read, ended, flowPid: (await read("pid")).trim(), slug: slugOf(output()) };
}

test("SIGTERM to the flow while the agent's session holds the terminal raw: the teardown puts back the terminal modes from before the session", async (t) => {
  const { env } = await flowEnv(t);
  const { output, read, ended, flowPid } = await rawSession(t, env);
  await run(["kill", "-s", "TERM", flowPid]);
  await ended();
  assert.equal((await read("code")).trim(), "143", output());
  assert.equal(await read("after"), await read("before"), `the terminal's modes were not put back:\n${output()}`);
});

test("a second Ctrl-C while the teardown's bb-cleanup runs: the bottle goes all the same, and the teardown still puts back the terminal's modes before the flow ends", async (t) => {
  const { env } = await flowEnv(t);
  const { output, read, ended, flowPid, slug } = await rawSession(t, env);
  // The first: the teardown starts (a SIGTERM: on the raw terminal a Ctrl-C is the agent's).
  await run(["kill", "-s", "TERM", flowPid]);
  const cleaning = async () => (await run(["pgrep", "-f", `bb-cleanup(\\.js|/main\\.ts) .*--slug ${slug}`], { expect: ANY_EXIT })).code === 0;
  for (let i = 0; i < 1200 && !(await cleaning()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(await cleaning(), `never saw the teardown's bb-cleanup:\n${output()}`);
  // The second, as the terminal sends it to its foreground group (the flow among it).
  await run(["kill", "-s", "INT", flowPid]);
  await ended();
  assert.deepEqual(await leftovers(slug), [], output());
  assert.ok(!existsSync(join(env.BB_STATE_DIR!, "bottles", slug)));
  assert.equal(await read("after"), await read("before"), `the terminal's modes were not put back:\n${output()}`);
  assert.equal((await read("code")).trim(), "143", `the first signal's code: ${output()}`);
});

test("keep=true leaves the bottle running and slug= alone reattaches to it (its agent read from its plan; another agent= is refused)", async (t) => {
  const { env } = await flowEnv(t);
  const first = await inTty(`${REPO}/node_modules/.bin/just --justfile ${REPO}/justfile start agent=shell yes=true keep=true`, env, "touch /tmp/marker; exit 0\n");
  assert.equal(first.code, 0, first.stdout);
  const slug = slugOf(first.stdout);
  assert.ok((await leftovers(slug)).length > 0, "keep=true tore the bottle down");
  // A plain `just cleanup` keeps a kept bottle: the way out named is the one that removes it.
  assert.match(first.stdout, new RegExp(`just start slug=${slug} reattaches, just cleanup --slug ${slug} removes it\\)`));
  // Each resource names its state root, so a cleanup of another root leaves it be.
  const ofRoot = await run(["docker", "ps", "--filter", `label=bot-bottle.slug=${slug}`, "--filter", `label=bot-bottle.state-root=${env.BB_STATE_DIR}`, "--format", "{{.Names}}"]);
  const nets = await run(["docker", "network", "ls", "--filter", `label=bot-bottle.slug=${slug}`, "--filter", `label=bot-bottle.state-root=${env.BB_STATE_DIR}`, "--format", "{{.Name}}"]);
  assert.deepEqual([...ofRoot.stdout.split("\n"), ...nets.stdout.split("\n")].filter(Boolean).sort(), (await leftovers(slug)).sort());
  const other = await just(["start", "agent=researcher", `slug=${slug}`, "yes=true"], env);
  assert.equal(other.code, 2, other.stderr);
  assert.equal(other.stderr.trim(), `just start: slug=${slug} is a bottle of agent=shell, not agent=researcher (leave agent= out to resume it)`);
  // bb-vm exec runs argv as it is: a first word with "=" is a file, not a variable.
  const vm = (...argv: string[]) => run([join(REPO, "bin/bb-vm"), "exec", "--slug", slug, "--", ...argv], { env, expect: ANY_EXIT });
  await vm("sh", "-c", "mkdir -p /tmp/a=b && printf '#!/bin/sh\\necho ran\\n' > /tmp/a=b/run && chmod +x /tmp/a=b/run");
  const eq = await vm("/tmp/a=b/run");
  assert.equal(eq.stdout, "ran\n", eq.stderr);
  const asked = await just(["supervise", "--slug", slug, "list", "--json"], env);
  assert.equal(asked.code, 0, asked.stderr);
  assert.equal(asked.stdout.trim(), "[]");
  // As a start flow that was killed leaves it (keep=false, SIGKILL): its owner record names
  // a dead pid, which makes a running bottle leftovers to bb-cleanup until someone takes it over.
  const dir = join(env.BB_STATE_DIR!, "bottles", slug);
  await rm(join(dir, "kept"));
  await writeFile(join(dir, "owner.json"), JSON.stringify({ pid: 2 ** 22 + 1, startedAt: new Date().toISOString() }));
  const bbList = async () => JSON.parse((await run([join(REPO, "bin/bb-list"), "--json", "--all", "--state-dir", env.BB_STATE_DIR!], { env })).stdout) as { slug: string; live: boolean }[];
  assert.equal((await bbList()).find((b) => b.slug === slug)?.live, false, "the setup: a dead owner");
  const again = await inTty(`${REPO}/node_modules/.bin/just --justfile ${REPO}/justfile start slug=${slug}`, env, "test -f /tmp/marker && exit 9\n");
  assert.match(again.stdout, new RegExp(`${slug} is running: reattaching`));
  assert.equal(again.code, 9, "the same container (with its marker file) was reattached");
  assert.ok((await leftovers(slug)).length > 0, "a reattached bottle stays up when the agent exits");
  assert.ok(existsSync(join(dir, "kept")) && !existsSync(join(dir, "owner.json")), "reattaching took the bottle over");
  assert.equal((await bbList()).find((b) => b.slug === slug)?.live, true, "bb-cleanup would remove the bottle you reattached to");
  // keep=false: reattached once more, and gone when the agent exits.
  const last = await inTty(`${REPO}/node_modules/.bin/just --justfile ${REPO}/justfile start slug=${slug} keep=false`, env, "exit 0\n");
  assert.equal(last.code, 0, last.stdout);
  assert.match(last.stdout, /tearing down/);
  assert.deepEqual(await leftovers(slug), []);
  assert.ok(!existsSync(join(env.BB_STATE_DIR!, "bottles", slug)), "state dir left behind");
});

test("slug= of a running bottle with the agent's input piped in hands all of it to the reattached agent", async (t) => {
  const { env } = await flowEnv(t);
  const kept = await just(["start", "agent=shell", "yes=true", "keep=true"], env, "exit 0\n");
  assert.equal(kept.code, 0, kept.stderr);
  const slug = slugOf(kept.stderr);
  // The check that the bottle runs must not read it first: the agent then got nothing and exited 0.
  const again = await just(["start", `slug=${slug}`], env, "echo reattached; exit 4\n");
  assert.match(again.stderr, new RegExp(`${slug} is running: reattaching`));
  assert.equal(again.stdout, "reattached\n", again.stderr);
  assert.equal(again.code, 4, again.stderr);
});

/** A kept bottle of agent=shell that left /tmp/mark holding "lived-here". */
async function keptShell(t: TestContext) {
  const { env } = await flowEnv(t);
  const kept = await just(["start", "agent=shell", "yes=true", "keep=true"], env, "echo lived-here > /tmp/mark; exit 0\n");
  assert.equal(kept.code, 0, kept.stderr);
  const slug = slugOf(kept.stderr);
  return { env, slug, dir: join(env.BB_STATE_DIR!, "bottles", slug) };
}

test("slug= keep=false whose attach never got a session (docker refused the exec) keeps the running bottle and says how to get back in or remove it; an agent that ran and exited 125 itself is torn down as asked", async (t) => {
  const { env, slug, dir } = await keptShell(t);
  // The real engine, but the attach's exec (the one with a terminal) is refused, as an
  // engine would refuse it; the flow's check that the bottle runs (no terminal) passes.
  const engine = await hangingEngine(t, { via: realEngineSocket(), refuse: { line: /^POST \/v[\d.]+\/containers\/[^/]+\/exec$/, body: /"Tty":true/ } });
  const justStart = `${REPO}/node_modules/.bin/just --justfile ${REPO}/justfile start`;
  const failed = await inTty(`${justStart} slug=${slug} keep=false`, { ...env, DOCKER_HOST: engine.host }, "exit 0\n");
  assert.equal(engine.held.length, 1, engine.held.join("\n"));
  assert.equal(failed.code, 125, failed.stdout);
  assert.match(failed.stdout, /refused by the test's engine/);
  assert.doesNotMatch(failed.stdout, /tearing down/);
  assert.match(failed.stdout, new RegExp(`» ${slug} stays up: this session never started \\(keep=false applies to a session that ran\\); just start slug=${slug} attaches again, just cleanup --slug ${slug} removes it`));
  assert.equal((await leftovers(slug)).length, 4, "the bottle was torn down by an attach that never started");
  assert.ok(existsSync(join(dir, "kept")) && !existsSync(join(dir, "owner.json")), "the bottle is not handed back as a kept one");
  // The agent's own 125 (the code bb-vm gives a session that never started) is an agent
  // that ran: torn down.
  const ran = await inTty(`${justStart} slug=${slug} keep=false`, env, "cat /tmp/mark; exit 125\n");
  assert.equal(ran.code, 125, ran.stdout);
  assert.match(ran.stdout, /lived-here/);
  assert.match(ran.stdout, /tearing down/);
  assert.deepEqual(await leftovers(slug), []);
  assert.ok(!existsSync(dir));
});

test("slug= keep=false without a terminal whose attach never got a session (the engine refused the agent's exec) keeps the running bottle and says so; an agent that ran and exited 125 itself is torn down as asked", async (t) => {
  const { env, slug, dir } = await keptShell(t);
  // Only the agent's exec (bash -l) is refused: the flow's check that the bottle runs passes.
  const engine = await hangingEngine(t, { via: realEngineSocket(), refuse: { line: /^POST \/v[\d.]+\/containers\/[^/]+\/exec$/, body: /"bash","-l"\]/ } });
  const failed = await just(["start", `slug=${slug}`, "keep=false"], { ...env, DOCKER_HOST: engine.host }, "exit 0\n");
  assert.equal(engine.held.length, 1, engine.held.join("\n"));
  assert.equal(failed.code, 125, failed.stderr);
  assert.match(failed.stderr, /refused by the test's engine/);
  assert.match(failed.stderr, new RegExp(`the session in bb-${slug}-agent did not start \\(docker exec exited \\d+, the engine never started it\\); the bottle runs on`));
  assert.doesNotMatch(failed.stderr, /tearing down/);
  assert.match(failed.stderr, new RegExp(`» ${slug} stays up: this session never started \\(keep=false applies to a session that ran\\); just start slug=${slug} attaches again, just cleanup --slug ${slug} removes it`));
  assert.equal((await leftovers(slug)).length, 4, "the bottle was torn down by an attach that never started");
  assert.ok(existsSync(join(dir, "kept")) && !existsSync(join(dir, "owner.json")), "the bottle is not handed back as a kept one");
  // The agent's own 125, no terminal either: it ran, so it goes.
  const ran = await just(["start", `slug=${slug}`, "keep=false"], env, "cat /tmp/mark; exit 125\n");
  assert.equal(ran.code, 125, ran.stderr);
  assert.match(ran.stdout, /lived-here/);
  assert.match(ran.stderr, /tearing down/);
  assert.deepEqual(await leftovers(slug), []);
  assert.ok(!existsSync(dir));
});

test("slug= of a bottle whose start flow runs its agent attaches beside it, without taking it over: it goes when that flow's agent exits", async (t) => {
  const { env } = await flowEnv(t);
  const dir = join(env.BB_STATE_DIR!, "bottles", "side");
  const justStart = `${REPO}/node_modules/.bin/just --justfile ${REPO}/justfile start`;
  // The first flow's agent waits for the marks of the two sessions beside it, then exits.
  const first = inTty(`${justStart} agent=shell slug=side yes=true`, env, "for m in beside still-beside; do for i in $(seq 600); do test -f /tmp/$m && break; sleep 0.1; done; done; exit 5\n");
  // Up once bb-provision has written its plan (the shell makes the file empty at the start).
  const ready = () => readFile(join(dir, "flow", "ready.json"), "utf8").then((text) => text.length > 0, () => false);
  for (let i = 0; i < 1200 && !(await ready()); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(await ready(), "the first flow never got its bottle up");
  const owner = JSON.parse(await readFile(join(dir, "owner.json"), "utf8"));
  const beside = await inTty(`${justStart} slug=side`, env, "touch /tmp/beside; exit 3\n");
  assert.equal(beside.code, 3, beside.stdout);
  assert.match(beside.stdout, new RegExp(`side is running and belongs to the start flow pid ${owner.pid}: attaching beside its agent`));
  assert.deepEqual(JSON.parse(await readFile(join(dir, "owner.json"), "utf8")), owner, "the second session took the bottle over");
  assert.ok(!existsSync(join(dir, "kept")));
  // A session still beside it when that flow tears the bottle down ends with it, and says
  // that nothing is left rather than offering to rebuild what is gone.
  const still = inTty(`${justStart} slug=side`, env, "touch /tmp/still-beside; sleep 600\n");
  const done = await first;
  assert.equal(done.code, 5, done.stdout);
  assert.match(done.stdout, /tearing down side/);
  const ended = await still;
  assert.notEqual(ended.code, 0, ended.stdout);
  assert.match(ended.stdout, new RegExp(`error: bottle side: its agent container bb-side-agent (is stopped|is being removed|is gone)(: the start flow pid ${owner.pid} that owns it is tearing it down, state dir and all, so nothing is left to resume; |; the bottle was removed \\(its state dir .* is gone\\): ).just start agent=shell. starts a new one`));
  assert.doesNotMatch(ended.stdout, /rebuilds it/, "offered to rebuild a bottle its owning flow removed");
  assert.deepEqual(await leftovers("side"), []);
});

test("a slug another state root's bottle holds, running or stopped, is refused before anything is made (just start, bb-bundle, bb-vm), naming that root; that bottle is untouched", async (t) => {
  const [a, b, c] = [await flowEnv(t), await flowEnv(t), await flowEnv(t)];
  const slug = "taken";
  const bin = (tool: string) => join(REPO, "bin", tool);
  // A plan root C prepared while the slug was free anywhere, for bb-bundle and bb-vm.
  const prepared = await run([bin("bb-prepare"), "shell", "--identity", slug, "-q"], { env: c.env });
  const planC = JSON.parse(prepared.stdout);
  const first = await just(["start", "agent=shell", `slug=${slug}`, "yes=true", "keep=true"], a.env, "exit 0\n");
  assert.equal(first.code, 0, first.stderr);
  t.after(() => run([bin("bb-cleanup"), "--slug", slug, "--yes", "-q", "--state-dir", a.state], { expect: ANY_EXIT }));
  const ofSlug = async () => {
    const c = await run(["docker", "ps", "-a", "--filter", `label=bot-bottle.slug=${slug}`, "--format", "{{.ID}} {{.Names}} {{.State}} {{.Label \"bot-bottle.state-root\"}}"]);
    const n = await run(["docker", "network", "ls", "--filter", `label=bot-bottle.slug=${slug}`, "--format", "{{.ID}} {{.Name}} {{.Label \"bot-bottle.state-root\"}}"]);
    return [...c.stdout.split("\n"), ...n.stdout.split("\n")].filter(Boolean).sort();
  };
  const refused = (stderr: string) => {
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
    assert.match(stderr.trim(), new RegExp(`^(bb-prepare|bb-bundle|bb-vm): error: Slug ${slug} is taken by a bottle of state root ${a.state} \\(.*\\); nothing was made: pick another slug`));
  };
  const aFiles = async () => (await readdir(join(a.state, "bottles", slug))).sort();
  const filesBefore = await aFiles();

  for (const state of ["running", "stopped"]) {
    if (state === "stopped") await run(["docker", "stop", "-t", "0", `bb-${slug}-agent`, `bb-${slug}-bundle`]);
    const before = await ofSlug();
    assert.equal(before.length, 4, before.join("\n"));
    assert.ok(before.every((line) => line.endsWith(` ${a.state}`)), before.join("\n"));

    const r = await just(["start", "agent=shell", `slug=${slug}`, "yes=true"], b.env, "exit 0\n");
    assert.equal(r.code, 1, `${state}: ${r.stderr}`);
    refused(r.stderr);
    assert.ok(!existsSync(join(b.state, "bottles", slug)), `${state}: a state dir was made for the refused bottle`);
    const json = await run([bin("bb-prepare"), "shell", "--identity", slug, "--json-errors"], { env: b.env, expect: ANY_EXIT });
    assert.deepEqual(JSON.parse(json.stderr.trim().split("\n").at(-1)!).error.details, { slug, stateRoot: a.state });
    assert.equal(JSON.parse(json.stderr.trim().split("\n").at(-1)!).error.code, "SLUG_TAKEN");

    const bundle = await run([bin("bb-bundle")], { env: c.env, input: prepared.stdout, expect: ANY_EXIT, timeoutMs: 120_000 });
    assert.equal(bundle.code, 1, bundle.stderr);
    refused(bundle.stderr);
    assert.ok(!existsSync(join(c.state, "bottles", slug, "ca")), "bb-bundle minted a CA for the refused bottle");
    // As bundled before root A's bottle came: its networks were bb-taken-int and -egress too.
    const bundled = { ...planC, bundle: { container: `bb-${slug}-bundle`, image: "bot-bottle/sidecar:test", networks: { internal: `bb-${slug}-int`, egress: `bb-${slug}-egress` }, caCert: join(c.state, "bottles", slug, "ca", "ca.pem"), agentUrls: { proxy: "http://firewall:8888", gitGate: null, supervise: "http://supervise:9100/mcp" }, hostPorts: null, loopbackAddr: null, startedAt: planC.createdAt } };
    // A plan written before network IDs were recorded is asked about first; one with the
    // IDs of networks since removed (a prune) once docker run fails on the name.
    const gone = { internal: "0".repeat(64), egress: "1".repeat(64) };
    for (const plan of [bundled, { ...bundled, bundle: { ...bundled.bundle, networkIds: gone } }]) {
      const vm = await run([bin("bb-vm")], { env: c.env, input: JSON.stringify(plan), expect: ANY_EXIT, timeoutMs: 120_000 });
      assert.equal(vm.code, 1, vm.stderr);
      // The latter asks only once docker refused the name: it says what it was starting.
      const starting = `» vm: starting bb-${slug}-agent on bb-${slug}-int only\n`;
      assert.equal(vm.stderr.includes(starting), plan !== bundled, vm.stderr);
      refused(vm.stderr.replace(starting, ""));
    }

    assert.deepEqual(await ofSlug(), before, `${state}: root A's containers or networks changed`);
    assert.deepEqual(await aFiles(), filesBefore, "root A's state dir changed");
  }
});

test("slug= of a kept bottle whose containers are gone, while another state root's bottle runs under that slug, never attaches into that bottle: the rebuild is refused naming that root", async (t) => {
  const [a, b] = [await flowEnv(t), await flowEnv(t)];
  const slug = `moved-${process.pid}`;
  const kept = await just(["start", "agent=shell", `slug=${slug}`, "yes=true", "keep=true"], b.env, "exit 0\n");
  assert.equal(kept.code, 0, kept.stderr);
  // Root B's bottle loses its containers and networks (a reboot, then a prune) and keeps its plan.
  await run(["docker", "rm", "-f", `bb-${slug}-agent`, `bb-${slug}-bundle`]);
  await run(["docker", "network", "rm", `bb-${slug}-int`, `bb-${slug}-egress`]);
  const bDir = join(b.state, "bottles", slug);
  const bFiles = async () => (await readdir(bDir)).sort();
  const bBefore = await bFiles();
  // Root A, which sees no bottle of that slug anywhere, starts one and keeps it.
  const first = await just(["start", "agent=shell", `slug=${slug}`, "yes=true", "keep=true"], a.env, "exit 0\n");
  assert.equal(first.code, 0, first.stderr);
  t.after(() => run([join(REPO, "bin/bb-cleanup"), "--slug", slug, "--yes", "-q", "--state-dir", a.state], { expect: ANY_EXIT }));

  const resumed = await just(["start", `slug=${slug}`, "yes=true"], b.env, "touch /tmp/from-b; exit 0\n");
  assert.equal(resumed.code, 1, resumed.stderr);
  assert.doesNotMatch(resumed.stderr, /reattaching/);
  assert.match(resumed.stderr, new RegExp(`${slug} is not running: rebuilding it under the same slug`));
  assert.match(resumed.stderr, new RegExp(`error: Slug ${slug} is taken by a bottle of state root ${a.state} `));
  const inA = await run(["docker", "exec", `bb-${slug}-agent`, "test", "-e", "/tmp/from-b"], { expect: ANY_EXIT });
  assert.equal(inA.code, 1, "root B's session ran in root A's bottle");
  assert.deepEqual(await bFiles(), bBefore, "root B's bottle files changed (an owner record taken, a kept record dropped)");
});

test("slug= of a kept bottle that stopped rebuilds it under its slug with its approved hosts; a bottle in use is never re-prepared", async (t) => {
  const { env } = await flowEnv(t);
  const state = env.BB_STATE_DIR!;
  const first = await just(["start", "agent=shell", "yes=true", "keep=true"], env, "exit 0\n");
  assert.equal(first.code, 0, first.stderr);
  const slug = slugOf(first.stderr);
  const dir = join(state, "bottles", slug);
  const planBefore = JSON.parse(await readFile(join(dir, "plan.json"), "utf8"));
  // Re-preparing a bottle in use would rewrite the files its daemons read.
  const prep = await run([join(REPO, "bin/bb-prepare"), "shell", "--identity", slug, "--state-dir", state], { expect: ANY_EXIT });
  assert.equal(prep.code, 2, prep.stderr);
  assert.match(prep.stderr, new RegExp(`Bottle ${slug} was started and not torn down, so its files are in use: .just start agent=shell slug=${slug}. resumes it`));

  // The operator approved a host while it ran; then a reboot stopped its agent.
  await writeRequest(join(dir, "supervise", "queue"), {
    version: 1, id: "req-1", kind: "host", host: "docs.example.test", tlsPassthrough: false, reason: "docs", question: null,
    status: "pending", answer: null, createdAt: new Date().toISOString(), decidedAt: null,
  });
  const approved = await run([join(REPO, "bin/bb-supervise"), "--slug", slug, "--state-dir", state, "approve", "req-1"], { expect: ANY_EXIT });
  assert.equal(approved.code, 0, approved.stderr);
  await run(["docker", "stop", "-t", "0", `bb-${slug}-agent`]);
  // Stopped, it is still the bottle you kept: a plain cleanup leaves it and its state.
  const listed = await run([join(REPO, "bin/bb-list"), "--json", "--state-dir", state]);
  const entry = (JSON.parse(listed.stdout) as { slug: string; status: string }[]).find((b) => b.slug === slug);
  assert.equal(entry?.status, "kept", listed.stdout);
  const swept = await run([join(REPO, "bin/bb-cleanup"), "--yes", "--grace", "0", "--state-dir", state, "--filter-label", "bot-bottle.test=1"], { expect: ANY_EXIT });
  assert.equal(swept.code, 0, swept.stderr);
  // Other live test bottles on the engine (another root's: a concurrent run) are kept too.
  assert.match(swept.stderr, new RegExp(`keeping \\d+ live bottle\\(s\\): (.*; )?${slug} \\(kept \\(keep=true\\), not running`));
  assert.ok(existsSync(join(dir, "supervise", "queue", "req-1.json")), "a plain cleanup removed a kept bottle's state");
  const exec = await run([join(REPO, "bin/bb-vm"), "exec", "--slug", slug, "--state-dir", state, "--", "true"], { expect: ANY_EXIT });
  assert.equal(exec.code, 125, "the bottle, not the command, failed");
  assert.match(exec.stderr, new RegExp(`error: bottle ${slug}: its agent container bb-${slug}-agent is stopped; .just start slug=${slug}. rebuilds it`));
  const tty = await run([join(REPO, "bin/bb-vm"), "exec", "-t", "--slug", slug, "--state-dir", state, "--", "true"], { expect: ANY_EXIT });
  assert.equal(tty.code, 2);
  assert.match(tty.stderr, /--tty needs a terminal on stdin/);

  // y/N "n" starts nothing and keeps the bottle's state.
  const no = await inTty(`${REPO}/node_modules/.bin/just --justfile ${REPO}/justfile start agent=shell slug=${slug}`, env, "n\n");
  assert.equal(no.code, 1, no.stdout);
  assert.match(no.stdout, new RegExp(`${slug} is not running: rebuilding it under the same slug`));
  assert.ok(existsSync(join(dir, "supervise", "queue", "req-1.json")), "declining the rebuild removed the bottle's state");
  // ...and its plan is the one that ran, so bb-vm still says it is stopped, not that it is not started.
  assert.ok(JSON.parse(await readFile(join(dir, "plan.json"), "utf8")).vm, "declining the rebuild left bb-prepare's fresh plan");
  assert.ok(!existsSync(join(dir, "flow", "plan.before.json")));

  const again = await just(["start", "agent=shell", `slug=${slug}`, "yes=true", "keep=true"], env, "echo rebuilt; exit 4\n");
  assert.equal(again.code, 4, again.stderr);
  assert.equal(again.stdout, "rebuilt\n");
  assert.match(again.stderr, /kept the host\(s\) you approved for this bottle before: docs\.example\.test/);
  const policy = JSON.parse(await readFile(join(dir, "firewall", "policy.json"), "utf8"));
  assert.ok(policy.hosts.some((h: { host: string }) => h.host === "docs.example.test"), JSON.stringify(policy.hosts));
  assert.equal(JSON.parse(await readFile(join(dir, "plan.json"), "utf8")).createdAt, planBefore.createdAt);
  const running = await run(["docker", "ps", "--filter", `label=bot-bottle.slug=${slug}`, "--format", "{{.Names}}"]);
  assert.equal(running.stdout.split("\n").filter(Boolean).length, 2, "the rebuilt bundle and agent run (keep=true)");
  const planCopy = join(await tempDir(t), "plan.json");
  await writeFile(planCopy, await readFile(join(dir, "plan.json"), "utf8"));
  await run([join(REPO, "bin/bb-cleanup"), "--slug", slug, "--yes", "-q", "--state-dir", state]);
  assert.deepEqual(await leftovers(slug), []);
  // Removed whole, it is not offered for a rebuild: there is nothing left to rebuild from.
  const removed = await run([join(REPO, "bin/bb-vm"), "exec", "--plan", planCopy, "--", "true"], { expect: ANY_EXIT });
  assert.notEqual(removed.code, 0);
  assert.match(removed.stderr, new RegExp(`its agent container bb-${slug}-agent is gone; the bottle was removed \\(its state dir .* is gone\\): .just start agent=shell. starts a new one`));
});

test("a \"n\" at the y/N of slug= over a stopped bottle leaves its folder as it was: not a file bb-prepare rewrote for the new plan is left, and its running bundle still reads it", async (t) => {
  const { env } = await flowEnv(t, { DECLINE_TEST_TOKEN: "not-a-real-token" });
  const slug = `declined-${process.pid}`;
  const m = await writeTree(await tempDir(t), {
    "agents/a.md": "---\nprovider: shell\nbottle: b\n---\nThe first prompt.\n",
    "b.md": "---\nsupervise: true\nallow_hosts: [a.example.test]\n---\n",
  });
  const first = await just(["start", "agent=a", `manifest=${m}`, `slug=${slug}`, "yes=true", "keep=true"], env, "exit 0\n");
  assert.equal(first.code, 0, first.stderr);
  // Its agent stopped (a reboot, or it died); its bundle, with the folders bind-mounted, runs on.
  await run(["docker", "stop", "-t", "0", `bb-${slug}-agent`]);
  const dir = join(env.BB_STATE_DIR!, "bottles", slug);
  await writeFile(join(dir, "approved-hosts.json"), JSON.stringify({ version: 1, hosts: [{ host: "docs.example.test", tlsPassthrough: false, request: "req-1", approvedAt: new Date().toISOString() }] }));
  await writeFile(join(dir, "firewall-reload-owed"), "an approval's reload went unanswered\n");
  const before = await folderState(dir);
  assert.match(before["supervise/queue"]!, /^dir 1770$/, "the setup: bb-bundle shares the queue (sticky)");

  // The manifest changed since: every file bb-prepare writes is another for the rebuild.
  await writeTree(m, {
    "agents/a.md": "---\nprovider: shell\nbottle: b\n---\nA second prompt.\n",
    "b.md": "---\nsupervise: true\nallow_hosts: [b.example.test]\negress:\n  - {host: api.example.test, auth: bearer, token_env: DECLINE_TEST_TOKEN}\ngit:\n  upstreams:\n    example.test: {url: \"https://example.test\"}\n  repos: [example.test/team/app]\n---\n",
  });
  const no = await inTty(`${REPO}/node_modules/.bin/just --justfile ${REPO}/justfile start slug=${slug}`, env, "n\n");
  assert.equal(no.code, 1, no.stdout);
  assert.match(no.stdout, new RegExp(`${slug} is not running: rebuilding it under the same slug[\\s\\S]*api\\.example\\.test[\\s\\S]*not started`), "the preflight showed the new plan");
  const after = await folderState(dir);
  // Its running bundle re-read the policy put back: the reload owed before is paid.
  assert.equal(after["firewall-reload-owed"], undefined, "the put-back's reload left the marker of one still owed");
  delete before["firewall-reload-owed"];
  assert.deepEqual(after, before, "declining the rebuild changed the bottle's folder");
  // Filled in place: the bundle's bind mount still shows the host's policy.
  const seen = await run(["docker", "exec", `bb-${slug}-bundle`, "cat", "/bb/firewall/policy.json"], { expect: ANY_EXIT });
  assert.equal(seen.stdout, await readFile(join(dir, "firewall", "policy.json"), "utf8"), seen.stderr);
});

test("slug= reads its bottle's manifest tree back from the plan when the tree's path holds a quote or a backslash (JSON escapes them)", async (t) => {
  const { state, env } = await flowEnv(t);
  const m = await writeTree(join(await tempDir(t), 'my "bottles" \\ here'), {
    "agents/a.md": "---\nprovider: shell\nbottle: b\n---\n",
    "b.md": "---\nsupervise: false\n---\n",
  });
  const slug = `quoted-${process.pid}`;
  // Prepared and never started: just start slug= rebuilds it, from the tree its plan names.
  const prepared = await run([join(REPO, "bin/bb-prepare"), "a", "--identity", slug, "--manifest-dir", m, "--state-dir", state, "-q"], { env, expect: ANY_EXIT });
  assert.equal(prepared.code, 0, prepared.stderr);
  assert.ok((await readFile(join(state, "bottles", slug, "plan.json"), "utf8")).includes('\\"bottles\\" \\\\ here'), "the setup: JSON escapes the path");
  const no = await inTty(`${REPO}/node_modules/.bin/just --justfile ${REPO}/justfile start slug=${slug}`, env, "n\n");
  assert.equal(no.code, 1, no.stdout);
  assert.match(no.stdout, /agent\s+a \(shell\)[\s\S]*not started/);
});

test("slug= over a folder with no plan (what an older bottle left: its approved hosts, its supervise queue): a \"n\", Ctrl-C while bb-prepare runs, and a start that fails all leave it", async (t) => {
  const { env } = await flowEnv(t);
  const slug = `leftover-${process.pid}`;
  const dir = join(env.BB_STATE_DIR!, "bottles", slug);
  const approvals = JSON.stringify({ version: 1, hosts: [{ host: "docs.example.test", tlsPassthrough: false, request: "req-1", approvedAt: new Date().toISOString() }] });
  await mkdir(join(dir, "supervise", "queue"), { recursive: true });
  await writeFile(join(dir, "approved-hosts.json"), approvals);
  await writeRequest(join(dir, "supervise", "queue"), {
    version: 1, id: "req-1", kind: "host", host: "docs.example.test", tlsPassthrough: false, reason: "docs", question: null,
    status: "approved", answer: null, createdAt: new Date().toISOString(), decidedAt: new Date().toISOString(),
  });
  await chmod(join(dir, "supervise", "queue"), 0o1770);
  const justStart = `${REPO}/node_modules/.bin/just --justfile ${REPO}/justfile start agent=shell slug=${slug}`;

  const before = await folderState(dir);
  const no = await inTty(justStart, env, "n\n");
  assert.equal(no.code, 1, no.stdout);
  assert.match(no.stdout, /kept the host\(s\) you approved for this bottle before: docs\.example\.test[\s\S]*not started/);
  assert.deepEqual(await folderState(dir), before, "declining removed or changed the folder");

  // Ctrl-C while bb-prepare runs, once it has claimed the folder (owner.json): it takes
  // the bottle's decision lock next, before it writes anything, and this test holding the
  // lock (as a bb-supervise deciding would) keeps it waiting there.
  const lock = await holdDecisionLock(t, dir);
  const held = await folderState(dir);
  const { term, closed, output } = startInTty(t, justStart, env);
  for (let i = 0; i < 1200 && !existsSync(join(dir, "owner.json")); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(existsSync(join(dir, "owner.json")), `bb-prepare never claimed the folder:\n${output()}`);
  term.stdin!.write("\x03");
  await closed;
  // The teardown outlives npx's just: judged once every process of this flow has ended
  // (each names the slug on its command line), not by one of the files it removes.
  const flowRuns = async () => (await run(["pgrep", "-f", slug], { expect: ANY_EXIT })).code === 0;
  for (let i = 0; i < 1200 && (await flowRuns()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(!(await flowRuns()), `the flow's teardown never ended:\n${output()}`);
  assert.deepEqual(await folderState(dir), held, "Ctrl-C during bb-prepare left its files behind");
  await lock.release();

  // Said yes, and the start fails (its egress network's name is taken): what started goes,
  // the folder's state stays, as for any bottle rebuilt under its slug.
  const squatter = `bb-${slug}-egress`;
  await run(["docker", "network", "create", ...labelArgs(testLabels()), squatter]);
  t.after(() => run(["docker", "network", "rm", squatter], { expect: ANY_EXIT }));
  const r = await just(["start", "agent=shell", `slug=${slug}`, "yes=true"], env);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`stopping what started of ${slug} \\(its state dir stays`));
  assert.deepEqual((await leftovers(slug)).filter((n) => n !== squatter), []);
  assert.equal(await readFile(join(dir, "approved-hosts.json"), "utf8"), approvals);
  assert.ok(existsSync(join(dir, "supervise", "queue", "req-1.json")), "the failed start removed the older bottle's queue");
  assert.ok(!existsSync(join(dir, "owner.json")));
});

test("cwd= copies the host checkout into ~/work, writable by the agent", async (t) => {
  const { env } = await flowEnv(t);
  const token = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
  const repo = await writeTree(await tempDir(t), {
    "hello.txt": "hello from the host\n",
    "sub/dir/file": "x",
    // What a CI checkout or a careless clone leaves on the host: the token must stay there.
    ".git/config": `[remote "origin"]\n\turl = https://x-access-token:${token}@github.com/acme/widget.git\n[http "https://github.com/"]\n\textraheader = AUTHORIZATION: bearer ${token}\n`,
  });
  // Symlinks arrive as symlinks, never as what they point to on the host.
  await symlink("hello.txt", join(repo, "link"));
  await symlink("/etc/host-only/secret", join(repo, "abs"));
  const r = await just(["run", "agent=shell", `cwd=${repo}`, "--", "sh", "-c", "pwd && cat ~/work/hello.txt && touch ~/work/sub/new && ls ~/work/sub/dir && readlink ~/work/link ~/work/abs && ls -a ~ && cat ~/work/.git/config"], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\/home\/node\/work\nhello from the host\nfile\nhello\.txt\n\/etc\/host-only\/secret\n/, "the command runs in the copied checkout");
  assert.doesNotMatch(r.stdout, /bb-checkout\.tar/, "the checkout's tar was left in the home folder");
  assert.match(r.stderr, /» provision: packing your checkout .*\n» provision: checkout packed \(\d+\.\d MiB\)/);
  assert.doesNotMatch(r.stdout, new RegExp(token), "the host checkout's token reached the bottle");
  assert.match(r.stdout, /url = https:\/\/github\.com\/acme\/widget\.git/, "the remote itself is kept");
  assert.match(r.stderr, /credentials removed from the bottle's copy of .* \(its git config files; yours are untouched\): \.git\/config: the credential in remote\.origin\.url; \.git\/config: http\.https:\/\/github\.com\/\.extraheader/);
  assert.match(await readFile(join(repo, ".git/config"), "utf8"), new RegExp(token), "the host's own file is untouched");
});

test("slug= rebuilding a stopped bottle copies the checkout it was started with (cwd=) in again, and says when that folder is gone", async (t) => {
  const { env } = await flowEnv(t);
  const repo = await writeTree(await tempDir(t), { "hello.txt": "hello from the host\n" });
  const first = await just(["start", "agent=shell", `cwd=${repo}`, "yes=true", "keep=true"], env, "exit 0\n");
  assert.equal(first.code, 0, first.stderr);
  const slug = slugOf(first.stderr);
  const stopAndRebuild = async () => {
    await run(["docker", "stop", "-t", "0", `bb-${slug}-agent`]);
    return await just(["start", `slug=${slug}`, "yes=true"], env, "cat ~/work/hello.txt 2>&1; exit 0\n");
  };
  // Changed on the host since: the rebuild takes the checkout as it is now.
  await writeFile(join(repo, "hello.txt"), "changed on the host\n");
  const again = await stopAndRebuild();
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, new RegExp(`» ~/work is copied afresh from ${repo}\n`));
  assert.equal(again.stdout, "changed on the host\n");
  // A checkout gone since: said, and the bottle rebuilt without one.
  await rm(repo, { recursive: true });
  const gone = await stopAndRebuild();
  assert.equal(gone.code, 0, gone.stderr);
  assert.match(gone.stderr, new RegExp(`» ${repo}, the checkout it was started with, is gone: rebuilding without one`));
  assert.match(gone.stdout, /No such file or directory/);
});

test("cwd= a linked worktree: the bottle gets a working repository on the worktree's branch, without the host's token", async (t) => {
  const { env } = await flowEnv(t);
  const token = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
  const dir = await tempDir(t);
  const gitEnv = { ...env, GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1", GIT_AUTHOR_NAME: "T", GIT_AUTHOR_EMAIL: "t@example.test", GIT_COMMITTER_NAME: "T", GIT_COMMITTER_EMAIL: "t@example.test" };
  const git = (cwd: string, ...args: string[]) => run(["git", ...args], { cwd, env: gitEnv });
  await run(["git", "init", "-q", "-b", "main", join(dir, "main")], { env: gitEnv });
  await git(join(dir, "main"), "remote", "add", "origin", `https://x-access-token:${token}@github.com/acme/widget.git`);
  await git(join(dir, "main"), "commit", "-q", "--allow-empty", "-m", "first");
  await git(join(dir, "main"), "worktree", "add", "-q", "-b", "feature", join(dir, "wt"));
  const r = await just(["run", "agent=shell", `cwd=${join(dir, "wt")}`, "--", "sh", "-c", "git rev-parse --abbrev-ref HEAD && git log --format=%s && git status --porcelain && git remote get-url origin"], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "feature\nfirst\nhttps://github.com/acme/widget.git\n");
  assert.match(r.stderr, /credentials removed from the bottle's copy of .*: the credential in remote\.origin\.url/);
});

test("forward_host_credentials: the host's codex login reaches egress's slot only; the agent gets placeholder JWTs", async (t) => {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const access = `${b64({ alg: "RS256" })}.${b64({ exp: 1893456000 })}.REAL-SIGNATURE-${"z".repeat(32)}`;
  const home = await writeTree(await tempDir(t), {
    ".codex/auth.json": JSON.stringify({ OPENAI_API_KEY: null, tokens: { id_token: access, access_token: access, refresh_token: "REAL-REFRESH", account_id: "a" } }),
  });
  const { state, env } = await flowEnv(t, { HOME: home });
  const bin = (tool: string) => join(REPO, "bin", tool);
  const pipe = `${bin("bb-prepare")} fwd --manifest-dir ${join(REPO, "tests/flow/testdata/bottles")} --state-dir ${state} | ${bin("bb-bundle")} | ${bin("bb-vm")} | ${bin("bb-provision")}`;
  const r = await run(["bash", "-o", "pipefail", "-c", pipe], { env, expect: ANY_EXIT, timeoutMs: 300_000 });
  assert.equal(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout);
  t.after(() => run([bin("bb-cleanup"), "--slug", plan.slug, "--yes", "-q", "--state-dir", state], { expect: ANY_EXIT }));
  const bundleEnv = await run(["docker", "inspect", "--format", "{{json .Config.Env}}", plan.bundle.container]);
  assert.ok(JSON.parse(bundleEnv.stdout).includes(`EGRESS_TOKEN_0=${access}`), "egress's slot holds the real token");
  const inAgent = await run(["docker", "exec", "-u", "node", plan.vm.name, "sh", "-c", "cat ~/.codex/auth.json; env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'"]);
  assert.ok(!inAgent.stdout.includes("REAL-SIGNATURE") && !inAgent.stdout.includes("REAL-REFRESH"), "a real credential is visible in the agent");
  const dummy = JSON.parse((await run(["docker", "exec", "-u", "node", plan.vm.name, "cat", "/home/node/.codex/auth.json"])).stdout);
  assert.equal(JSON.parse(Buffer.from(dummy.tokens.access_token.split(".")[1], "base64url").toString()).exp, 1893456000);
});

test("bb-bundle gives up at once on a daemon that keeps crashing, names it with its log, and leaves no container or network", async (t) => {
  const { state, env } = await flowEnv(t);
  const bin = (tool: string) => join(REPO, "bin", tool);
  const prepared = await run([bin("bb-prepare"), "shell", "--state-dir", state], { env, timeoutMs: 60_000 });
  const plan = JSON.parse(prepared.stdout);
  await writeFile(plan.files.firewallPolicy, "{ not json"); // the firewall exits at start, every time
  const began = Date.now();
  const r = await run([bin("bb-bundle"), "--ready-timeout", "120"], { env, input: prepared.stdout, expect: ANY_EXIT, timeoutMs: 180_000 });
  const took = Date.now() - began;
  assert.notEqual(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`^bb-bundle: error: Cannot start bundle for ${plan.slug}: daemon firewall keeps exiting \\(\\d+ times\\) instead of answering on 8888`, "m"));
  assert.match(r.stderr, /last bundle log lines:[\s\S]*firewall/);
  assert.ok(took < 60_000, `it waited ${took} ms, as if for the timeout`);
  assert.deepEqual(await leftovers(plan.slug), []);
});

test("bb-bundle --no-wait leaves the readiness wait to bb-provision, which names a daemon that never answers", async (t) => {
  const { state, env } = await flowEnv(t);
  const bin = (tool: string) => join(REPO, "bin", tool);
  const pipe = `${bin("bb-prepare")} shell --state-dir ${state} | ${bin("bb-bundle")} --no-wait | ${bin("bb-vm")}`;
  const r = await run(["bash", "-o", "pipefail", "-c", pipe], { env, expect: ANY_EXIT, timeoutMs: 300_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /daemons answering/, "bb-bundle --no-wait does not wait for the daemons");
  const plan = JSON.parse(r.stdout);
  t.after(() => run([bin("bb-cleanup"), "--slug", plan.slug, "--yes", "-q", "--state-dir", state], { expect: ANY_EXIT }));

  // A frozen bundle never answers: bb-provision gives up after --ready-timeout, names the
  // daemon, and has not touched the agent.
  await run(["docker", "pause", plan.bundle.container]);
  const frozen = await run([bin("bb-provision"), "--ready-timeout", "2"], { env, input: r.stdout, expect: ANY_EXIT, timeoutMs: 60_000 });
  assert.equal(frozen.code, 124, frozen.stderr);
  assert.match(frozen.stderr, new RegExp(`^bb-provision: error: Cannot provision ${plan.slug}: daemon (firewall|supervise) did not answer on \\d+ within 2s`, "m"));
  const untouched = await run(["docker", "exec", plan.vm.name, "test", "-e", "/home/node/.bot-bottle"], { expect: ANY_EXIT });
  assert.notEqual(untouched.code, 0, "provisioning ran although the bundle never answered");

  await run(["docker", "unpause", plan.bundle.container]);
  const ok = await run([bin("bb-provision")], { env, input: r.stdout, expect: ANY_EXIT, timeoutMs: 60_000 });
  assert.equal(ok.code, 0, ok.stderr);
  // Up at the first look: bb-provision goes on without a word about it.
  assert.doesNotMatch(ok.stderr, /daemons answering/);
  assert.match(ok.stderr, /provision: unpack/);

  // Its bundle removed since: said as gone, with no log of a container that is not there.
  await run(["docker", "rm", "--force", plan.bundle.container]);
  const gone = await run([bin("bb-provision")], { env, input: r.stdout, expect: ANY_EXIT, timeoutMs: 60_000 });
  assert.equal(gone.code, 1, gone.stderr);
  assert.match(gone.stderr, new RegExp(`^bb-provision: error: Cannot provision ${plan.slug}: its bundle container ${plan.bundle.container} is gone \\(docker rm, or bb-cleanup --slug ${plan.slug}, removed it\\)$`, "m"));
  assert.doesNotMatch(gone.stderr, /last bundle log lines|No such container/);
});

test("--ready-timeout refuses a value that is not a positive number before doing anything", async () => {
  for (const tool of ["bb-bundle", "bb-provision"]) {
    const r = await run([join(REPO, "bin", tool), "--ready-timeout", "soon"], { expect: ANY_EXIT, input: "" });
    assert.equal(r.code, 2, `${tool}: ${r.stderr}`);
    assert.match(r.stderr, /--ready-timeout wants a number of seconds above 0, got "soon"/);
  }
});

test("just run with the Docker engine out of reach: bb-bundle's one error, the later steps quiet, nothing left", async (t) => {
  const { state, env } = await flowEnv(t, { DOCKER_HOST: "unix:///nonexistent/docker.sock" });
  const r = await just(["run", "agent=shell", "--", "true"], env);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr.match(/^[\w-]+: error: /gm)?.length, 1, r.stderr);
  assert.match(r.stderr, /^bb-bundle: error: Cannot reach the Docker engine/m);
  assert.doesNotMatch(r.stderr, /got no plan on stdin|teardown .* was incomplete/i);
  assert.deepEqual(await readdir(join(state, "bottles")), [], "the state dir was left behind");
});

test("bb-bundle on a plan whose state dir is gone says so, and makes nothing", async (t) => {
  const { state, env } = await flowEnv(t);
  const prepared = await run([join(REPO, "bin/bb-prepare"), "shell"], { env, expect: ANY_EXIT });
  assert.equal(prepared.code, 0, prepared.stderr);
  const slug = JSON.parse(prepared.stdout).slug as string;
  await rm(join(state, "bottles", slug), { recursive: true });
  const r = await run([join(REPO, "bin/bb-bundle")], { env, input: prepared.stdout, expect: ANY_EXIT });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`Cannot start the bundle for ${slug}: its state dir .* is gone or incomplete .*run bb-prepare again`));
  assert.ok(!existsSync(join(state, "bottles", slug)), "bb-bundle made the bottle's folder again");
  assert.deepEqual(await leftovers(slug), []);
});

test("bb-bundle that fails part-way removes what it created and nothing else", async (t) => {
  const { state, env } = await flowEnv(t);
  const bin = (tool: string) => join(REPO, "bin", tool);
  const prepared = await run([bin("bb-prepare"), "shell", "--state-dir", state, "-q"], { env });
  const plan = JSON.parse(prepared.stdout);
  // Someone else's network already holds the egress network's name: creating it fails
  // after the internal network (created alongside) may already exist.
  const squatter = `bb-${plan.slug}-egress`;
  await run(["docker", "network", "create", ...labelArgs(testLabels()), squatter]);
  t.after(() => run(["docker", "network", "rm", squatter], { expect: ANY_EXIT }));

  const r = await run([bin("bb-bundle")], { env, input: prepared.stdout, expect: ANY_EXIT, timeoutMs: 120_000 });
  assert.notEqual(r.code, 0, "bb-bundle succeeded although its egress network name was taken");
  assert.match(r.stderr, new RegExp(`^bb-bundle: error: Cannot start the bundle: network ${squatter} already exists, and this step did not make it: bottle ${plan.slug} has a bundle already`, "m"));
  assert.match(r.stderr, /rolling back what this step created/);
  // The squatter carries the bottle's name but is the test's own (asserted kept below).
  assert.deepEqual((await leftovers(plan.slug)).filter((n) => n !== squatter), [], "a network or container of the failed bundle was left behind");
  const still = await run(["docker", "network", "inspect", squatter], { expect: ANY_EXIT });
  assert.equal(still.code, 0, "the rollback removed a network bb-bundle did not create");
  assert.ok(!existsSync(join(state, "bottles", plan.slug, "ca")), "the CA minted for the failed bundle was left behind");
});

test("bb-bundle run again on a plan it bundled already names the bottle, rolls nothing back, and leaves the running bundle be", async (t) => {
  const { state, env } = await flowEnv(t);
  const bin = (tool: string) => join(REPO, "bin", tool);
  const prepared = await run([bin("bb-prepare"), "shell", "--state-dir", state, "-q"], { env });
  const plan = JSON.parse(prepared.stdout);
  t.after(() => run([bin("bb-cleanup"), "--slug", plan.slug, "--yes", "-q", "--state-dir", state], { expect: ANY_EXIT }));
  const first = await run([bin("bb-bundle"), "--no-wait"], { env, input: prepared.stdout, expect: ANY_EXIT, timeoutMs: 120_000 });
  assert.equal(first.code, 0, first.stderr);
  const before = (await leftovers(plan.slug)).sort();

  const again = await run([bin("bb-bundle"), "--no-wait"], { env, input: prepared.stdout, expect: ANY_EXIT, timeoutMs: 120_000 });
  assert.equal(again.code, 1, again.stderr);
  assert.match(again.stderr, new RegExp(`^bb-bundle: error: Cannot start the bundle: network bb-${plan.slug}-(int|egress) already exists, and this step did not make it: bottle ${plan.slug} has a bundle already, which this plan did not start \\(bb-list --all shows it; bb-cleanup --slug ${plan.slug} removes the bottle\\)`, "m"));
  assert.doesNotMatch(again.stderr, /rolling back|docker network create/, "nothing was made to roll back, and docker's argv is no message");
  assert.deepEqual((await leftovers(plan.slug)).sort(), before);
  assert.ok(existsSync(join(state, "bottles", plan.slug, "ca")), "the first bundle's CA was removed");
});

test("a step that fails mid-pipe gives the flow its exit code, and the bottle is gone", async (t) => {
  const { state, env } = await flowEnv(t);
  // slug= fixes the bottle's name, so its egress network name can be taken beforehand:
  // bb-bundle fails, and bb-vm and bb-provision behind it in the pipe get no plan.
  const slug = "shell-pipefail";
  const squatter = `bb-${slug}-egress`;
  await run(["docker", "network", "create", ...labelArgs(testLabels()), squatter]);
  t.after(() => run(["docker", "network", "rm", squatter], { expect: ANY_EXIT }));

  const r = await just(["start", "agent=shell", `slug=${slug}`, "yes=true", "keep=true"], env);
  assert.equal(r.code, 1, `bb-bundle's own exit code (1), not a later step's (3):\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(squatter), "bb-bundle says what failed");
  assert.doesNotMatch(r.stderr, /got no plan on stdin/i, "the steps after the failed one add nothing to its error");
  assert.doesNotMatch(r.stderr, /starting bb-shell-pipefail-agent/, "bb-vm started an agent without a bundle");
  // The squatter carries the bottle's name but is the test's own.
  assert.deepEqual((await leftovers(slug)).filter((n) => n !== squatter), [], "keep=true keeps a bottle whose agent ran, not the parts of one that failed");
  assert.ok(!existsSync(join(state, "bottles", slug)), "state dir left behind");
});

test("a file:// git upstream (a folder on this machine) is served in the bottle: clone, and a push within policy lands in the folder", async (t) => {
  const { env } = await flowEnv(t);
  const root = await tempDir(t, "bb-flow-local-upstream-");
  const upstream = join(root, "upstream");
  const gitEnv = { GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1", GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.test", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@example.test" };
  await run(["git", "init", "-q", "--bare", "--shared=group", "-b", "main", join(upstream, "team", "app")], { env: gitEnv });
  const seed = join(root, "seed");
  await run(["git", "clone", "-q", join(upstream, "team", "app"), seed], { env: gitEnv });
  await writeFile(join(seed, "README"), "from the host\n");
  await run(["sh", "-c", "git add README && git commit -qm seed && git push -q origin HEAD:main"], { cwd: seed, env: gitEnv });
  const manifest = await writeTree(await tempDir(t), {
    "agents/a.md": "---\nprovider: shell\nbottle: b\n---\n",
    "b.md": `---\ngit_user: {name: bot, email: bot@example.test}\ngit:\n  upstreams:\n    local.test: {url: "file://${upstream}"}\n  repos: [local.test/team/app]\n  push:\n    allowed_refs: ["refs/heads/bot/*"]\n---\n`,
  });
  const r = await just(["run", "agent=a", `manifest=${manifest}`, "--", "sh", "-c",
    "git clone -q https://local.test/team/app && cd app && cat README && echo more > NEW && git add NEW && git commit -qm more && git push -q origin HEAD:refs/heads/bot/x && (git push -q origin HEAD:main 2>&1 || true)"], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^from the host\n/);
  assert.match(r.stdout, /refs\/heads\/main is not an allowed ref/, "the push policy applies to a local upstream");
  const landed = await run(["git", "--git-dir", join(upstream, "team", "app"), "log", "--format=%s", "bot/x"], { env: gitEnv });
  assert.equal(landed.stdout, "more\nseed\n");
});
