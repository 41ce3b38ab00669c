// The shared CLI pieces, in a real tool process where the behaviour is the tool's.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { BbError } from "./errors.ts";
import { wholeNumber } from "./cli.ts";
import { run } from "./proc.ts";
import { REPO_ROOT, tsArgv } from "./supervise/testdata/ts-argv.ts";

test("wholeNumber() takes digits at or above its minimum and names the flag otherwise", () => {
  assert.equal(wholeNumber("--grace")("0"), 0);
  assert.equal(wholeNumber("--max-sessions", 1)("16"), 16);
  for (const bad of ["0", "-1", "1.5", "1e3", " 2", "", "x"]) {
    assert.throws(() => wholeNumber("--max-sessions", 1)(bad), (e: BbError) => e.code === "USAGE" && /--max-sessions wants a whole number of at least 1/.test(e.message), bad);
  }
});

test("a bad number flag exits 2 before the tool does anything (git-gate, bb-cleanup)", async () => {
  const gate = await run(tsArgv("sidecar-image/git-gate/main.ts", ["--max-sessions", "0"]), { expect: [0, 1, 2], input: "" });
  assert.equal(gate.code, 2, gate.stderr);
  assert.match(gate.stderr, /^git-gate: error: --max-sessions wants a whole number of at least 1, got "0"/);
  const cleanup = await run(tsArgv("tools/bb-cleanup/main.ts", ["--grace", "soon"]), { expect: [0, 1, 2], input: "" });
  assert.equal(cleanup.code, 2, cleanup.stderr);
  assert.match(cleanup.stderr, /^bb-cleanup: error: --grace wants a whole number, got "soon"/);
});

test("an error names the tool that says it, commander's own usage errors too: in a pipe of four tools, a bare 'error:' leaves you to guess", async () => {
  const unknown = await run(tsArgv("tools/bb-list/main.ts", ["--bogus"]), { expect: [0, 1, 2] });
  assert.equal(unknown.code, 2, unknown.stderr);
  assert.match(unknown.stderr, /^bb-list: error: unknown option '--bogus'$/m);
  const sub = await run(tsArgv("tools/bb-vm/main.ts", ["exec"]), { expect: [0, 1, 2], input: "" });
  assert.equal(sub.code, 2, sub.stderr);
  assert.match(sub.stderr, /^bb-vm: error: missing required argument 'cmd'$/m);
  const missing = await run(tsArgv("tools/bb-provision/main.ts", ["--plan", "/nonexistent/plan.json"]), { expect: [0, 1, 2, 3] });
  assert.equal(missing.stderr, "bb-provision: error: --plan /nonexistent/plan.json: no such file\n");
});

test("a tool's warning and debug lines name it as its error lines do (createProgram); a sidecar daemon's are left for init to name", async (t) => {
  const levels = "(one of debug, info, warn, error, silent): using info";
  for (const [tool, args] of [["bb-provision", []], ["bb-bundle", []], ["bb-vm", ["exec"]]] as const) {
    const r = await run(tsArgv(`tools/${tool}/main.ts`, [...args, "--plan", "/nonexistent/plan.json", ...(args.length ? ["--", "true"] : [])]), {
      expect: [0, 1, 2, 3],
      env: { BB_LOG_LEVEL: "bogus" },
    });
    assert.equal(r.stderr, `${tool}: warning: BB_LOG_LEVEL=bogus is not a log level ${levels}\n${tool}: error: --plan /nonexistent/plan.json: no such file\n`);
  }
  // Nothing on PATH: bb-list says so in a debug line for smolvm and asks no engine.
  const state = await mkdtemp(join(tmpdir(), "bb-cli-named-"));
  t.after(() => rm(state, { recursive: true, force: true }));
  const list = await run(tsArgv("tools/bb-list/main.ts", ["--json", "--state-dir", state]), { env: { BB_LOG_LEVEL: "debug", PATH: "/nonexistent" } });
  assert.match(list.stderr, /^bb-list: debug: smolvm is not installed \(not on PATH\)/m);
  assert.doesNotMatch(list.stderr, /^(debug|warning|error): /m);
  // init puts "git-gate | " before each of the daemon's lines: a name of its own would say it twice.
  const gate = await run(tsArgv("sidecar-image/git-gate/main.ts", ["--max-sessions", "0"]), { expect: [0, 1, 2], input: "", env: { BB_LOG_LEVEL: "bogus" } });
  assert.equal(gate.stderr, `warning: BB_LOG_LEVEL=bogus is not a log level ${levels}\ngit-gate: error: --max-sessions wants a whole number of at least 1, got "0"\n`);
});

test("--plan naming no file is a usage error (exit 2); a file holding no plan is an invalid plan (exit 3)", async (t) => {
  const missing = await run(tsArgv("tools/bb-provision/main.ts", ["--plan", "/nonexistent/plan.json"]), { expect: [0, 1, 2, 3] });
  assert.equal(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, /--plan \/nonexistent\/plan\.json: no such file/);
  const dir = await mkdtemp(join(tmpdir(), "bb-cli-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, "plan.json"), "{}");
  const invalid = await run(tsArgv("tools/bb-provision/main.ts", ["--plan", join(dir, "plan.json")]), { expect: [0, 1, 2, 3] });
  assert.equal(invalid.code, 3, invalid.stderr);
  const folder = await run(tsArgv("tools/bb-provision/main.ts", ["--plan", dir]), { expect: [0, 1, 2, 3] });
  assert.equal(folder.code, 2, folder.stderr);
  assert.match(folder.stderr, /--plan .* is a folder, not a plan file/);
  await writeFile(join(dir, "broken.json"), '{"slug":\n  oops\n}');
  const broken = await run(tsArgv("tools/bb-provision/main.ts", ["--plan", join(dir, "broken.json")]), { expect: [0, 1, 2, 3] });
  assert.equal(broken.code, 3, broken.stderr);
  assert.equal(broken.stderr.trim().split("\n").length, 1, `one line: ${broken.stderr}`);
});

test("each tool's exit-code table lists the plan and manifest codes only where the tool can return them", async () => {
  const help = async (tool: string) => (await run(tsArgv(`tools/${tool}/main.ts`, ["--help"]))).stderr;
  for (const [tool, plan, manifest] of [["bb-prepare", false, true], ["bb-provision", true, false], ["bb-list", false, false], ["bb-cleanup", false, false]] as const) {
    const text = await help(tool);
    assert.match(text, /Exit codes:\n\s+0\s+ok/, tool);
    assert.equal(/\n\s+3\s+invalid plan/.test(text), plan, tool);
    assert.equal(/\n\s+4\s+invalid manifest/.test(text), manifest, tool);
  }
});

test("an empty plan from a pipe says the step before failed; inside the start flow (BB_PIPE_STEP=1) only the exit code says it", async () => {
  const argv = tsArgv("tools/bb-provision/main.ts", []).map((a) => `'${a}'`).join(" ");
  const alone = await run(["sh", "-c", `true | ${argv}`], { expect: [3] });
  // The tool named once, as every error line names it.
  assert.equal(alone.stderr, "bb-provision: error: Got no plan on stdin: the step before this one in the pipe failed or wrote nothing\n");
  const inFlow = await run(["sh", "-c", `true | ${argv}`], { expect: [3], env: { BB_PIPE_STEP: "1" } });
  assert.equal(inFlow.stderr, "");
});

test("no plan at all (stdin empty, not a pipe) is a usage error naming the way to give one: --slug for the tools that find a running bottle", async () => {
  const vm = await run(["sh", "-c", `${tsArgv("tools/bb-vm/main.ts", ["exec", "--", "true"]).map((a) => `'${a}'`).join(" ")} </dev/null`], { expect: [0, 1, 2, 3] });
  assert.equal(vm.code, 2, vm.stderr);
  assert.equal(vm.stderr.trim(), "bb-vm: error: No plan: stdin is empty; pass --slug SLUG (bb-list shows them) or --plan FILE, or pipe one in (bb-prepare AGENT | ...)");
  const provision = await run(["sh", "-c", `${tsArgv("tools/bb-provision/main.ts", []).map((a) => `'${a}'`).join(" ")} </dev/null`], { expect: [0, 1, 2, 3] });
  assert.equal(provision.code, 2, provision.stderr);
  assert.match(provision.stderr, /No plan: stdin is empty; pass --plan FILE, or pipe one in/);
});

/** The fake docker's calls other than the one it holds: answered at once, `docker version`
 * as an engine does (with nothing printed, the engine check would fail first, a race). */
const ANSWER = `{ [ "$1" = version ] && echo '{"Version":"0-test","Arch":"amd64","Os":"linux"}'; exit 0; }`;

test("Ctrl-C while a tool waits on docker: one warning and 'Interrupted by SIGINT', not docker's own exit as a second error; inside the start flow, nothing", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "bb-cli-int-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // A docker whose first call hangs until the signal reaches it too, as Ctrl-C reaches a
  // whole terminal group; the rollback's calls after it answer at once. The first call is
  // claimed with mkdir, which is atomic: bb-bundle runs some docker calls at once.
  await writeFile(join(dir, "docker"), `#!/bin/sh\nmkdir ${dir}/docker-called 2>/dev/null || ${ANSWER}\nexec sleep 30\n`);
  await chmod(join(dir, "docker"), 0o755);
  const prepared = await run(tsArgv("tools/bb-prepare/main.ts", ["shell", "--state-dir", join(dir, "state")]));
  await writeFile(join(dir, "plan.json"), prepared.stdout);
  const interrupted = async (env: Record<string, string>) => {
    await rm(join(dir, "docker-called"), { recursive: true, force: true });
    const [cmd, ...args] = tsArgv("tools/bb-bundle/main.ts", ["--plan", join(dir, "plan.json")]);
    const child = spawn(cmd!, args, { detached: true, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, ...env } });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    for (let i = 0; i < 300 && !existsSync(join(dir, "docker-called")); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(existsSync(join(dir, "docker-called")), `bb-bundle never called docker:\n${stderr}`);
    process.kill(-child.pid!, "SIGINT");
    return { code: await exited, stderr };
  };
  const alone = await interrupted({});
  assert.equal(alone.code, 130, alone.stderr);
  assert.deepEqual(alone.stderr.match(/^(bb-bundle: )?(error|warning): .*$/gm), ["bb-bundle: warning: SIGINT received: stopping and rolling back", "bb-bundle: error: Interrupted by SIGINT"], alone.stderr);
  const inFlow = await interrupted({ BB_PIPE_STEP: "1" });
  assert.equal(inFlow.code, 130, inFlow.stderr);
  assert.equal(inFlow.stderr.match(/^(bb-bundle: )?(error|warning): .*$/gm), null, inFlow.stderr);
});

test("a docker that dies of Ctrl-C before the tool hears it is still the interruption, not a failure of its own", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "bb-cli-int-order-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // The order a loaded machine can show: the child's exit (130) is seen first, the tool's
  // own SIGINT later: 0.3 s, past the rollback, within the ~1 s the tool waits for it. The
  // background kill keeps no pipe of the child open. Only the first call does this, claimed
  // with mkdir (atomic): bb-bundle runs some docker calls at once, and two calls both seeing
  // no claim would send the tool two SIGINTs, the second of which ends it outright.
  await writeFile(join(dir, "docker"), `#!/bin/sh\nmkdir ${dir}/docker-called 2>/dev/null || ${ANSWER}\n(sleep 0.3; kill -INT $PPID) </dev/null >/dev/null 2>&1 &\nkill -INT $$\nsleep 5\n`);
  await chmod(join(dir, "docker"), 0o755);
  const prepared = await run(tsArgv("tools/bb-prepare/main.ts", ["shell", "--state-dir", join(dir, "state")]));
  await writeFile(join(dir, "plan.json"), prepared.stdout);
  const r = await run(tsArgv("tools/bb-bundle/main.ts", ["--plan", join(dir, "plan.json")]), { env: { PATH: `${dir}:${process.env.PATH}` }, expect: [0, 1, 130] });
  assert.ok(existsSync(join(dir, "docker-called")), r.stderr);
  assert.equal(r.code, 130, r.stderr);
  assert.deepEqual(r.stderr.match(/^(bb-bundle: )?(error|warning): .*$/gm), ["bb-bundle: warning: SIGINT received: stopping and rolling back", "bb-bundle: error: Interrupted by SIGINT"], r.stderr);
});

test("a next step that exits before reading the plan: one error naming the bottle and how to remove it, no stack trace", async (t) => {
  const state = await mkdtemp(join(tmpdir(), "bb-cli-"));
  t.after(() => rm(state, { recursive: true, force: true }));
  // `true` is gone long before bb-prepare has a plan to write, so the write meets a closed pipe.
  const argv = tsArgv("tools/bb-prepare/main.ts", ["shell", "--state-dir", state, "-q"]).map((a) => `'${a}'`).join(" ");
  const r = await run(["bash", "-c", `set -o pipefail; ${argv} | true`], { expect: [0, 1, 2, 3] });
  assert.equal(r.code, 1, r.stderr);
  const slug = /bottle (shell-[a-z0-9]+) is left/.exec(r.stderr)?.[1];
  assert.ok(slug, r.stderr);
  assert.equal(r.stderr.trim(), `bb-prepare: error: stdout was closed before the output was written: the next step in the pipe exited first; bottle ${slug} is left as this step made it: bb-cleanup --slug ${slug} removes it`);
  assert.ok(existsSync(join(state, "bottles", slug)), "what the step made is still there to find");
});

test("every tool has a deno task that runs it (deno task bb-list --help)", async () => {
  const tools = (await readdir(join(REPO_ROOT, "tools"), { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  const tasks = (JSON.parse(await readFile(join(REPO_ROOT, "deno.json"), "utf8")) as { tasks: Record<string, string> }).tasks;
  for (const tool of tools) assert.equal(tasks[tool], `deno run -A tools/${tool}/main.ts`, tool);
  const r = await run([join(REPO_ROOT, "node_modules/.bin/deno"), "task", "--quiet", "bb-list", "--help"], { cwd: REPO_ROOT, env: { NO_COLOR: "1" } });
  assert.match(r.stderr, /^Usage: bb-list \[options\]/m);
});

test("a key=value word where a tool takes flags (just cleanup slug=S, as just start slug=S is written) names the flag it meant", async () => {
  const cleanup = await run(tsArgv("tools/bb-cleanup/main.ts", ["slug=shell-k3x9"]), { expect: [0, 1, 2], input: "" });
  assert.equal(cleanup.code, 2, cleanup.stderr);
  assert.match(cleanup.stderr, /^bb-cleanup: error: too many arguments\. Expected 0 arguments but got 1\. \(did you mean --slug shell-k3x9\?\)\n/);
  const yes = await run(tsArgv("tools/bb-cleanup/main.ts", ["yes=true"]), { expect: [0, 1, 2], input: "" });
  assert.match(yes.stderr, /\(did you mean --yes\?\)\n/);
  // A word naming no flag of the tool gets no guess.
  const list = await run(tsArgv("tools/bb-list/main.ts", ["colour=red"]), { expect: [0, 1, 2], input: "" });
  assert.equal(list.code, 2, list.stderr);
  assert.doesNotMatch(list.stderr, /did you mean/);
});
