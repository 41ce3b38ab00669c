// The driver through a whole machine lifecycle against the smolvm stand-in, once per
// supported release: the stand-in rejects any argv that release would not take, and its
// "VM" is a real docker container, so exit codes, stdin, env and files are real.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fakeSmolvm, makeArtifact, type FakeSmolvm } from "../../tests/fakes/smolvm/harness.ts";
import { buildTestImage, type TestImage } from "../../tests/fakes/smolvm/images.ts";
import { run } from "../proc.ts";
import { openSmolvm } from "./driver.ts";

let image: TestImage;
let dir: string;
let artifact: string;
const fakes: FakeSmolvm[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "bb-smolvm-driver-"));
  image = await buildTestImage({ marker: "driver-marker" });
  artifact = await makeArtifact(image.tag, join(dir, "agent.smolmachine"));
});

after(async () => {
  // Every fake is cleaned before any verdict, so one failed test leaves no container behind.
  const left: string[] = [];
  for (const f of fakes) left.push(...(await f.cleanup()));
  await image?.remove();
  rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(left, [], "a test left a machine behind");
});

const SETTLE_MS = 400;

for (const version of ["0.8.0", "0.8.1", "1.0.2", "1.8.0"]) {
  test(`smolvm ${version}: create, start, exec, cp, ls, status, stop and delete through the driver`, async () => {
    const fake = fakeSmolvm(version);
    fakes.push(fake);
    const smolvm = await openSmolvm({ env: fake.env, settleMs: SETTLE_MS });
    const name = "bb-test-m1";

    await smolvm.create({ name, from: artifact, allowCidrs: ["127.0.0.1/32"], env: { GREETING: "hello from the host" } });
    await smolvm.start(name);

    const r = await smolvm.exec({ name, argv: ["sh", "-c", 'cat /bb-test-marker; echo "$GREETING"; echo oops >&2; exit 7'] });
    assert.deepEqual(r, { code: 7, stdout: "driver-marker\nhello from the host\n", stderr: "oops\n" });
    const echoed = await smolvm.exec({ name, argv: ["cat"], input: "through stdin\n", env: { X: "1" } });
    assert.deepEqual([echoed.code, echoed.stdout], [0, "through stdin\n"]);
    assert.equal((await smolvm.exec({ name, argv: ["pwd"], workdir: "/etc" })).stdout, "/etc\n");

    const src = join(dir, `in-${version}.txt`);
    writeFileSync(src, `file for ${version}\n`);
    await smolvm.cpIn(name, src, "/tmp/in.txt");
    await smolvm.cpOut(name, "/tmp/in.txt", join(dir, `out-${version}.txt`));
    assert.equal(readFileSync(join(dir, `out-${version}.txt`), "utf8"), `file for ${version}\n`);

    const [listed] = await smolvm.ls();
    assert.deepEqual([listed?.name, listed?.state, listed?.network, typeof listed?.pid], [name, "running", true, "number"]);
    assert.equal((await smolvm.status(name)).state, "running");

    await smolvm.stop(name);
    assert.equal((await smolvm.status(name)).state, "stopped");
    await smolvm.delete(name);
    assert.deepEqual(await smolvm.ls(), []);
    const left = await run(["docker", "ps", "-aq", "--filter", "label=bot-bottle.fake-smolvm.machine=" + name, "--filter", "label=bot-bottle.test=1"]);
    assert.equal(left.stdout.trim(), "", "delete removed the machine's container");

    // Every call the driver made, in order, in this release's dialect.
    const calls = fake.calls();
    const shapes = calls.map((c) => c.argv.slice(0, 2).join(" ") + (c.argv.includes("--name") ? " --name" : ""));
    assert.deepEqual(shapes, [
      "--version",
      version < "1.0.2" ? "machine create" : "machine create --name",
      // A release that keeps --allow-cidr itself has it read back before the machine starts.
      ...(version >= "1.8.0" ? ["machine ls"] : []),
      "machine start --name",
      "machine exec --name",
      "machine exec --name",
      "machine exec --name",
      "machine cp",
      "machine cp",
      "machine ls",
      "machine status --name",
      "machine stop --name",
      "machine status --name",
      version < "1.0.2" ? "machine delete" : "machine delete --name",
      "machine ls",
    ]);
    // The first exec waited out the settle time after start.
    const started = shapes.indexOf("machine start --name");
    const gap = Date.parse(calls[started + 1]!.at) - Date.parse(calls[started]!.at);
    assert.ok(gap >= SETTLE_MS, `first exec came ${gap}ms after start`);
  });
}
