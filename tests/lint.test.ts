// The project's lint rules that no formatter checks: stdout is for data, so production
// code never calls console.*; and nothing deep in the code calls process.exit (errors are
// values that main maps to exit codes). Test fixtures (testdata/) are exempt. And no
// test takes its context in an it(): deno never runs that context's t.after(). And every
// skip goes through skipWhen(): deno counts a t.skip() as passed and prints no reason for
// a bare skip option.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { REPO } from "./support/tools.ts";

function sources(dir: string, tests: boolean, out: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    if (e === "node_modules" || e === "testdata" || e.startsWith(".")) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) sources(p, tests, out);
    else if (e.endsWith(".ts") && e.endsWith(".test.ts") === tests) out.push(p);
  }
  return out;
}

const files = ["lib", "tools", "sidecar-image", "smolmachine-pack"].flatMap((d) => sources(join(REPO, d), false));
const testFiles = ["lib", "tools", "sidecar-image", "smolmachine-pack", "tests"].flatMap((d) => sources(join(REPO, d), true));

function offenders(pattern: RegExp, among = files): string[] {
  return among.flatMap((f) =>
    readFileSync(f, "utf8")
      .split("\n")
      .map((line, i) => ({ line, i }))
      .filter(({ line }) => pattern.test(line) && !/^\s*(\/\/|\*)/.test(line))
      .map(({ i }) => `${relative(REPO, f)}:${i + 1}`),
  );
}

test("production code writes to stdout/stderr only through the logger and writePlan, never console.*", () => {
  assert.ok(files.length > 50, "the lint found the sources");
  assert.deepEqual(offenders(/\bconsole\.(log|info|warn|error|debug)\(/), []);
});

test("production code never calls process.exit: errors go back to main as values", () => {
  assert.deepEqual(offenders(/\bprocess\.exit\(/), []);
});

test("no test takes its context in an it(): deno never runs an it()'s t.after(), so what it cleans up would stay (use test())", () => {
  assert.ok(testFiles.length > 50, "the lint found the tests");
  assert.deepEqual(offenders(/\bit\((["'`]).*?\1,\s*(async\s*)?\(?t\b/, testFiles), []);
});

test("every skip goes through skipWhen() (tests/support/skip.ts): never the context's skip method nor a bare skip option, which deno counts as passed or ignores without a reason", () => {
  const testSide = [...testFiles, ...sources(join(REPO, "tests"), false)].filter((f) => relative(REPO, f) !== "tests/support/skip.ts");
  assert.deepEqual(offenders(/\.skip\(|\bskip\s*:/, testSide), []);
});
