import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { run } from "../../lib/proc.ts";
import { machineFromArgv, sideChannelArgv } from "./resize.ts";

const TOOL = fileURLToPath(new URL("../../bin/bb-pty-resize", import.meta.url));

test("machineFromArgv() takes --name from the smolvm flags, not from the guest command", () => {
  assert.equal(machineFromArgv(["smolvm", "machine", "exec", "-i", "-t", "--name", "bb-a", "--", "claude", "--name", "x"]), "bb-a");
  assert.equal(machineFromArgv(["smolvm", "machine", "exec", "--name=bb-b", "--", "sh"]), "bb-b");
  assert.equal(machineFromArgv(["smolvm", "machine", "exec", "--", "prog", "--name", "x"]), null);
});

test("sideChannelArgv() passes the size as arguments to a fixed stty loop over every guest PTY", () => {
  assert.deepEqual(sideChannelArgv("smolvm", "m", 40, 120), [
    "smolvm",
    "machine",
    "exec",
    "--name",
    "m",
    "--",
    "sh",
    "-c",
    'for p in /dev/pts/[0-9]*; do stty -F "$p" rows "$1" cols "$2"; done',
    "sh",
    "40",
    "120",
  ]);
  assert.throws(() => sideChannelArgv("smolvm", "m", 0, 80), RangeError);
  assert.throws(() => sideChannelArgv("smolvm", "m", 1.5, 80), RangeError);
});

test("without a terminal bb-pty-resize just runs the command and returns its exit code and output", async () => {
  // No smolvm involved: not a TTY means no version check and no side channel at all.
  const r = await run([TOOL, "--", "sh", "-c", 'echo "out $1"; echo err >&2; exit 5', "sh", "--name"], { expect: [5] });
  assert.equal(r.stdout, "out --name\n");
  assert.equal(r.stderr, "err\n");
});

test("bb-pty-resize --help explains the side channel and the exit code", async () => {
  const r = await run([TOOL, "--help"]);
  assert.match(r.stderr, /SIGWINCH/);
  assert.match(r.stderr, /stty -F "\$p" rows R cols C/);
  assert.match(r.stderr, /exit code is the wrapped command's/);
});

test("bb-pty-resize refuses a bad --first-sync-ms as a usage error", async () => {
  const r = await run([TOOL, "--first-sync-ms", "soon", "--", "true"], { expect: [2] });
  assert.match(r.stderr, /--first-sync-ms must be a number/);
});

test("bb-pty-resize names a command that does not exist (exit 1, not a usage error)", async () => {
  const r = await run([TOOL, "--", "/nonexistent/x"], { expect: [1] });
  assert.match(r.stderr, /bb-pty-resize: error: Cannot run \/nonexistent\/x: no such program/);
});
