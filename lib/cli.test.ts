// The shared CLI pieces, in a real tool process where the behaviour is the tool's.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BbError } from "./errors.ts";
import { wholeNumber } from "./cli.ts";
import { run } from "./proc.ts";
import { tsArgv } from "./supervise/testdata/ts-argv.ts";

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
  assert.match(gate.stderr, /--max-sessions wants a whole number of at least 1, got "0"/);
  const cleanup = await run(tsArgv("tools/bb-cleanup/main.ts", ["--grace", "soon"]), { expect: [0, 1, 2], input: "" });
  assert.equal(cleanup.code, 2, cleanup.stderr);
  assert.match(cleanup.stderr, /--grace wants a whole number, got "soon"/);
});
