// bb-pty-resize on a real pseudo-terminal (testdata/pty-run.py) around the smolvm
// stand-in, whose `exec -t` is `docker exec -it` and, like smolvm before 0.8.1, leaves the
// guest PTY at 0x0. The guest prints `stty size` of its own PTY a few times a second
// while the host terminal starts at 30x100 and is resized to 40x120.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { run } from "../../lib/proc.ts";
import { openSmolvm } from "../../lib/smolvm/driver.ts";
import { fakeSmolvm, makeArtifact, type FakeSmolvm } from "../../tests/fakes/smolvm/harness.ts";
import { buildTestImage, type TestImage } from "../../tests/fakes/smolvm/images.ts";

const TOOL = fileURLToPath(new URL("../../bin/bb-pty-resize", import.meta.url));
const PTY_RUN = fileURLToPath(new URL("./testdata/pty-run.py", import.meta.url));
const GUEST = ["sh", "-c", 'for i in $(seq 1 14); do stty size; sleep 0.25; done; exit 3'];

let image: TestImage;
let dir: string;
let artifact: string;
const fakes: Record<string, FakeSmolvm> = {};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "bb-pty-resize-"));
  image = await buildTestImage();
  artifact = await makeArtifact(image.tag, join(dir, "a.smolmachine"));
  for (const version of ["0.8.0", "0.8.1"]) {
    const fake = fakeSmolvm(version);
    fakes[version] = fake;
    const smolvm = await openSmolvm({ env: fake.env, settleMs: 0 });
    await smolvm.create({ name: "tty", from: artifact, allowCidrs: [], env: {} });
    await smolvm.start("tty");
    fake.clearCalls();
  }
});

after(async () => {
  for (const f of Object.values(fakes)) await f.cleanup();
  await image?.remove();
  rmSync(dir, { recursive: true, force: true });
});

/** Run argv on a 30x100 terminal resized to 40x120 after 2 s; the distinct sizes printed, in order. */
async function onTerminal(version: string, argv: string[]) {
  fakes[version]!.clearCalls();
  const r = await run(["python3", PTY_RUN, "30", "100", "2.0", "40", "120", "--", ...argv], {
    env: { ...fakes[version]!.env, BB_FROM_SOURCE: "1" },
    expect: [0, 1, 2, 3],
    timeoutMs: 60_000,
  });
  const sizes = r.stdout
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => /^\d+ \d+$/.test(l))
    .filter((l, i, all) => i === 0 || all[i - 1] !== l);
  return { code: r.code, sizes, out: r.stdout };
}

const execTty = ["smolvm", "machine", "exec", "-i", "-t", "--name", "tty", "--", ...GUEST];

test("on smolvm 0.8.0 the guest PTY stays 0x0 without the wrapper (the bug being worked around)", async () => {
  const { code, sizes } = await onTerminal("0.8.0", execTty);
  assert.equal(code, 3);
  assert.deepEqual(sizes, ["0 0"]);
});

test("on smolvm 0.8.0 bb-pty-resize sets the guest PTY to the host size after the first sync and follows a resize", async () => {
  const { code, sizes, out } = await onTerminal("0.8.0", [TOOL, "--first-sync-ms", "700", "--", ...execTty]);
  assert.equal(code, 3, out);
  assert.deepEqual(sizes, ["0 0", "30 100", "40 120"], out);
  const calls = fakes["0.8.0"]!.calls();
  assert.deepEqual(calls.slice(0, 2).map((c) => c.argv.slice(0, 3)), [["--version"], ["machine", "exec", "-i"]]);
  const side = calls.filter((c) => c.argv.some((a) => a.startsWith("for p in /dev/pts/[0-9]*; do stty -F")));
  assert.deepEqual(side.map((c) => c.argv.slice(-2)), [["30", "100"], ["40", "120"]]);
  assert.ok(side.every((c) => !c.stdinTty), "the side channel never shares the terminal");
  assert.ok(calls[1]!.stdinTty, "the wrapped exec keeps the terminal");
  // The timer starts when the exec is spawned, after --version answered.
  assert.ok(Date.parse(side[0]!.at) - Date.parse(calls[0]!.at) >= 700, "the first sync is deferred");
});

test("on smolvm 0.8.1 bb-pty-resize adds no side channel: smolvm forwards the size itself", async () => {
  const { code, sizes, out } = await onTerminal("0.8.1", [TOOL, "--first-sync-ms", "300", "--", ...execTty]);
  assert.equal(code, 3, out);
  // docker's own first resize can land just after the guest's first `stty size`.
  assert.deepEqual(sizes[0] === "0 0" ? sizes.slice(1) : sizes, ["30 100", "40 120"], out);
  assert.deepEqual(
    fakes["0.8.1"]!.calls().map((c) => c.argv.slice(0, 3)),
    [["--version"], ["machine", "exec", "-i"]],
  );
});

test("with pipes instead of a terminal bb-pty-resize runs the exec untouched: no version check, no side channel", async () => {
  fakes["0.8.0"]!.clearCalls();
  const r = await run([TOOL, "--", "smolvm", "machine", "exec", "--name", "tty", "--", "sh", "-c", "echo piped; exit 4"], {
    env: { ...fakes["0.8.0"]!.env, BB_FROM_SOURCE: "1" },
    expect: [4],
  });
  assert.equal(r.stdout, "piped\n");
  assert.deepEqual(fakes["0.8.0"]!.calls().map((c) => c.argv.slice(0, 2)), [["machine", "exec"]]);
});
