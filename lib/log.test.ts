import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger, setTool } from "./log.ts";
import { start } from "./proc.ts";
import { tsArgv } from "./supervise/testdata/ts-argv.ts";

test("a BB_LOG_LEVEL that is no level is said once, naming the variable, its value and the levels, and info is used", (t) => {
  const before = process.env.BB_LOG_LEVEL;
  t.after(() => (before === undefined ? delete process.env.BB_LOG_LEVEL : (process.env.BB_LOG_LEVEL = before)));
  const out: string[] = [];
  const write = (text: string) => void out.push(text);

  process.env.BB_LOG_LEVEL = "bogus";
  const a = createLogger({ write });
  const b = createLogger({ write, prefix: "other" });
  a.info("one");
  a.debug("not shown");
  b.warn("two");
  assert.deepEqual(out, [
    "warning: BB_LOG_LEVEL=bogus is not a log level (one of debug, info, warn, error, silent): using info\n",
    "one\n",
    "otherwarning: two\n",
  ]);

  // A known level, in any case, and an empty value (as unset) are taken without a word;
  // a name the level table merely inherits is no level.
  for (const [value, shown, warned] of [["DEBUG", 2, 0], ["", 1, 0], ["constructor", 1, 1]] as const) {
    out.length = 0;
    process.env.BB_LOG_LEVEL = value;
    a.debug("d");
    a.info("i");
    assert.equal(out.filter((l) => !l.startsWith("warning:")).length, shown, value);
    assert.equal(out.filter((l) => l.startsWith("warning: BB_LOG_LEVEL=")).length, warned, value);
  }
});

test("a stderr read slower than warnings come holds at most about a MiB of them; the rest are counted, said once it is read, and info lines all go", async () => {
  const count = 100_000; // about 32 MB of warnings
  const child = start(tsArgv("lib/testdata/log-flood.ts", [String(count)]), { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise((r) => child.on("close", r));
  let stdout = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  // stderr is not read until the flood is over (a runtime that writes stderr
  // synchronously waits for it, so after a while it is read all the same).
  for (let i = 0; i < 300 && !/queued \d+/.test(stdout); i++) await sleep(20);
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  await exited;
  const queued = Number(/queued (\d+)/.exec(stdout)?.[1]);
  assert.ok(queued < 1.2 * 1024 * 1024, `${queued} bytes waited unwritten`);
  const lines = stderr.split("\n");
  const shown = lines.filter((l) => l.startsWith("flood: warning: blocked GET")).length;
  const leftOut = lines.map((l) => /^warning: (\d+) log line\(s\) left out: they came faster than the log was read$/.exec(l)?.[1]).filter(Boolean).map(Number);
  assert.equal(shown + leftOut.reduce((a, b) => a + b, 0), count, `${shown} shown, left out: ${leftOut.join(", ")}`);
  assert.ok(lines.includes("flood: policy reloaded"), "the info line was left out");
  assert.equal(lines.filter(Boolean).at(-1), "flood: done");
});

test("setTool() names the tool first on every warning, error and debug line, a child's too, and on no info or step line", (t) => {
  const lines: string[] = [];
  const log = createLogger({ write: (text) => void lines.push(text), level: "debug" });
  setTool("bb-list");
  t.after(() => setTool(""));
  log.warn("docker: Cannot reach the Docker engine");
  log.child("scan").warn("x");
  log.info("i");
  log.error("e");
  log.debug("d");
  log.step("s");
  assert.deepEqual(lines, ["bb-list: warning: docker: Cannot reach the Docker engine\n", "bb-list: scan: warning: x\n", "i\n", "bb-list: error: e\n", "bb-list: debug: d\n", "» s\n"]);
});

test("a stderr that went away (its reader exited, a terminal closed) does not end the process: the work goes on and finishes", async () => {
  const child = start(tsArgv("lib/testdata/stderr-gone.ts"), { stdio: ["pipe", "pipe", "pipe"] });
  const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  let stdout = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  for (let i = 0; i < 500 && !stderr.includes("gone: started"); i++) await sleep(20);
  assert.ok(stderr.includes("gone: started"), stderr);
  child.stderr!.destroy();
  child.stdin!.end();
  assert.equal(await exited, 0, `stdout: ${stdout}`);
  assert.equal(stdout, "work done\n");
});
