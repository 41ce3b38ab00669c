import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { isBbError } from "./errors.ts";
import { setLogLevel } from "./log.ts";
import { newAgentKey } from "./http/agent-key.ts";
import { redactCredentials, run, start, which } from "./proc.ts";
import { tempDir } from "../tests/support/tmp.ts";
import { tsArgv } from "./supervise/testdata/ts-argv.ts";

test("run() ends at its timeout even when a grandchild still holds the output pipes", async () => {
  const started = Date.now();
  // sh is killed at the timeout; the sleep it started in the background keeps stdout open.
  await assert.rejects(run(["sh", "-c", "sleep 15 & wait"], { timeoutMs: 300, what: "waiting" }), (e) => {
    return isBbError(e) && e.code === "TIMEOUT" && /^waiting: sh -c 'sleep 15 & wait' did not finish within 300ms$/.test(e.message);
  });
  // Well before the grandchild let go: how soon after the timeout is the machine's load.
  assert.ok(Date.now() - started < 10_000, `run() returned after ${Date.now() - started} ms`);
});

test("run() reports a failing command's exit code and the tail of its stderr", async () => {
  await assert.rejects(run(["sh", "-c", "echo one >&2; echo two >&2; exit 3"], { what: "the step" }), (e) => {
    return isBbError(e) && e.code === "SUBPROCESS" && e.message === "the step: sh -c 'echo one >&2; echo two >&2; exit 3' exited 3: one\ntwo";
  });
  assert.equal((await run(["sh", "-c", "exit 3"], { expect: [3] })).code, 3);
});

test("run() streams an input file into the child's stdin, and names a file it cannot read", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "bb-proc-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "big.bin");
  writeFileSync(file, Buffer.alloc(8 * 1024 * 1024, 7)); // more than one pipe buffer, many chunks
  assert.equal((await run(["wc", "-c"], { input: { file } })).stdout.trim(), String(8 * 1024 * 1024));
  await assert.rejects(run(["cat"], { input: { file: join(dir, "missing") }, what: "Cannot feed cat" }), (e) => {
    return isBbError(e) && e.code === "SUBPROCESS" && /^Cannot feed cat: cannot read .*missing for cat: ENOENT/.test(e.message);
  });
});

test("which() finds executable files on PATH, or at a path given with a slash; not directories, not files without x", async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, "tool"), "#!/bin/sh\n", { mode: 0o755 });
  await writeFile(join(dir, "plain"), "not executable", { mode: 0o644 });
  await mkdir(join(dir, "folder"));
  const env = { PATH: `/nonexistent:${dir}` };
  assert.equal(await which("tool", env), true);
  assert.equal(await which("plain", env), false);
  assert.equal(await which("folder", env), false);
  assert.equal(await which("missing", env), false);
  assert.equal(await which("", env), false);
  assert.equal(await which(join(dir, "tool"), { PATH: "" }), true);
  assert.equal(await which("sh"), true, "sh on this process's PATH");
});

test("run() hides URL credentials in what it says about a command: the error, its details, the stderr tail and the debug log", async () => {
  const url = "https://bbuser:UPSTREAM-TOKEN-s3cr3t@127.0.0.1:1/acme/widget";
  const lines: string[] = [];
  const failing = run(["sh", "-c", 'echo "fatal: cannot reach $0" >&2; exit 3', url], { what: "Cannot forward" }).catch((e) => e);
  const slow = run(["sh", "-c", "sleep 5", url], { timeoutMs: 100 }).catch((e) => e);
  setLogLevel("debug");
  const write = process.stderr.write;
  process.stderr.write = ((t: string) => (lines.push(String(t)), true)) as typeof process.stderr.write;
  try {
    await run(["true", url]);
  } finally {
    process.stderr.write = write;
    setLogLevel("info");
  }
  for (const e of [await failing, await slow]) {
    assert.ok(isBbError(e));
    const said = `${e.message}\n${JSON.stringify(e.details)}`;
    assert.ok(!said.includes("UPSTREAM-TOKEN"), said);
    assert.match(said, /https:\/\/\*\*\*@127\.0\.0\.1:1\/acme\/widget/);
  }
  assert.equal((await failing).code, "SUBPROCESS");
  assert.equal((await slow).code, "TIMEOUT");
  // The two above may end while the log is at debug level: their lines are checked too.
  for (const l of lines) assert.ok(!l.includes("UPSTREAM-TOKEN"), l);
  assert.ok(lines.includes(`debug: run: true https://***@127.0.0.1:1/acme/widget\n`), lines.join(""));
  assert.ok(lines.some((l) => /^debug: ran \d+ ms, exit 0: true https:\/\/\*\*\*@127\.0\.0\.1:1\/acme\/widget\n$/.test(l)), lines.join(""));
});

test("run() says at debug level, as each command ends, how long it took and its exit code, with the head of its argv", async () => {
  const lines: string[] = [];
  setLogLevel("debug");
  const write = process.stderr.write;
  process.stderr.write = ((t: string) => (lines.push(String(t)), true)) as typeof process.stderr.write;
  const t0 = performance.now();
  try {
    await run(["sh", "-c", "sleep 0.2; exit 3", "x".repeat(200)], { expect: [3] });
  } finally {
    process.stderr.write = write;
    setLogLevel("info");
  }
  const took = performance.now() - t0;
  const ran = lines.map((l) => /^debug: ran (\d+) ms, exit (\d+): (.*)\n$/.exec(l)).filter((m) => m !== null);
  assert.equal(ran.length, 1, lines.join(""));
  const [, ms, code, head] = ran[0]!;
  assert.equal(code, "3");
  assert.ok(Number(ms) >= 200 && Number(ms) <= Math.ceil(took), `${ms} ms, the call took ${took}`);
  assert.equal(head, `sh -c 'sleep 0.2; exit 3' ${"x".repeat(200)}`.slice(0, 100) + "...");
});

test("run() hides a bottle's agent key wherever it is in what it says about a command: git-gate's and supervise's URL paths, an assignment, the output", async () => {
  const key = newAgentKey();
  const argv = ["sh", "-c", 'echo "no $1" >&2; exit 3', "sh", `git://127.0.0.16:40001/${key}/github.com/o/r`, `http://127.0.0.16:40002/${key}/mcp`, `BB_AGENT_KEY=${key}`];
  const lines: string[] = [];
  setLogLevel("debug");
  const write = process.stderr.write;
  process.stderr.write = ((t: string) => (lines.push(String(t)), true)) as typeof process.stderr.write;
  let e: unknown;
  try {
    e = await run(argv).catch((x) => x);
  } finally {
    process.stderr.write = write;
    setLogLevel("info");
  }
  assert.ok(isBbError(e));
  const said = `${lines.join("")}\n${e.message}\n${JSON.stringify(e.details)}`;
  assert.ok(!said.includes(key), said);
  assert.match(said, /git:\/\/127\.0\.0\.16:40001\/\*\*\*\/github\.com\/o\/r http:\/\/127\.0\.0\.16:40002\/\*\*\*\/mcp BB_AGENT_KEY=\*\*\*/);
  assert.match(e.message, /no git:\/\/127\.0\.0\.16:40001\/\*\*\*\/github\.com\/o\/r$/);
  // A longer run of hex digits (a SHA-256 object name) is not a key and stays.
  const sha256 = "a".repeat(64);
  assert.equal(redactCredentials(`fetched ${sha256}`), `fetched ${sha256}`);
});

test("runInteractive's `orphaned` command runs once we are killed (SIGKILL) before the child, never after a child that ended, and is killed past its limit", async (t) => {
  const dir = await tempDir(t);
  const file = (name: string) => join(dir, name);
  /** orphaned.ts running `child` with `script` as the orphaned command, its lines gathered. */
  const launch = (script: string, child: string[]) => {
    const p = start(tsArgv("lib/testdata/orphaned.ts", [script, ...child]), { stdio: ["ignore", "pipe", "inherit"] });
    const started = new Promise<void>((resolve) => p.stdout!.on("data", (b: Buffer) => String(b).includes("started") && resolve()));
    const exited = new Promise((r) => p.once("exit", r));
    t.after(() => void p.kill("SIGKILL"));
    return { p, started, exited };
  };
  const eventually = async (what: string, check: () => Promise<boolean>) => {
    for (const began = Date.now(); !(await check()); await new Promise((r) => setTimeout(r, 50))) assert.ok(Date.now() - began < 30_000, what);
  };
  const has = (name: string) => readFile(file(name), "utf8").then(() => true, () => false);

  const killed = launch(`echo ran > ${file("ran")}`, ["sleep", "60"]);
  await killed.started;
  killed.p.kill("SIGKILL");
  await eventually("the orphaned command never ran after we were killed", () => has("ran"));

  // A child that ends on its own: no orphaned command; and its exit code is ours.
  const ended = launch(`echo ran > ${file("ended")}`, ["sh", "-c", "exit 3"]);
  assert.equal(await ended.exited, 3);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await has("ended"), false, "the orphaned command ran after a child that ended on its own");

  // One that does not end within its limit (2 s) is killed: its marker stops growing.
  const hung = launch(`while :; do echo . >> ${file("hung")}; sleep 0.1; done`, ["sleep", "60"]);
  await hung.started;
  hung.p.kill("SIGKILL");
  await eventually("the orphaned command never ran", () => has("hung"));
  const size = async () => (await readFile(file("hung"), "utf8")).length;
  let last = -1;
  await eventually("the orphaned command ran on past its limit", async () => {
    const now = await size();
    const still = now === last;
    last = now;
    if (!still) await new Promise((r) => setTimeout(r, 1000));
    return still;
  });
});
