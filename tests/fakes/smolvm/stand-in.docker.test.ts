// The stand-in itself: strict about calls, and its network imitates TSI's allowlist (the
// guest reaches host listeners on allowed addresses, nothing else; no --net, no network).
// All traffic stays on this machine: a TCP server on host loopback is the only target.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, test } from "node:test";
import { openSmolvm } from "../../../lib/smolvm/driver.ts";
import { run } from "../../../lib/proc.ts";
import { FAKE_SMOLVM_DIR, fakeSmolvm, makeArtifact, type FakeSmolvm } from "./harness.ts";
import { buildTestImage, type TestImage } from "./images.ts";

let image: TestImage;
let dir: string;
let artifact: string;
let server: Server;
let port: number;
const fakes: FakeSmolvm[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "bb-stand-in-"));
  image = await buildTestImage();
  artifact = await makeArtifact(image.tag, join(dir, "a.smolmachine"));
  server = createServer((s) => s.end("hello guest\n"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as { port: number }).port;
});

after(async () => {
  for (const f of fakes) await f.cleanup();
  server?.close();
  await image?.remove();
  rmSync(dir, { recursive: true, force: true });
});

// bash's /dev/tcp: the image has no curl or nc.
const dial = (addr: string) => ["bash", "-c", `exec 3<>/dev/tcp/${addr}/${port} && timeout 5 cat <&3`];

async function machine(version: string, allowCidrs: string[]) {
  const fake = fakeSmolvm(version);
  fakes.push(fake);
  const smolvm = await openSmolvm({ env: fake.env, settleMs: 0 });
  await smolvm.create({ name: "net", from: artifact, allowCidrs, env: {} });
  await smolvm.start("net");
  return { fake, smolvm };
}

test("a guest allowed 127.0.0.1/32 reaches a host loopback listener, not other addresses, and has no interface but lo", async () => {
  const { smolvm } = await machine("1.8.0", ["127.0.0.1/32"]);
  const ok = await smolvm.exec({ name: "net", argv: dial("127.0.0.1") });
  assert.deepEqual([ok.code, ok.stdout], [0, "hello guest\n"]);
  const other = await smolvm.exec({ name: "net", argv: dial("127.0.0.2") });
  assert.notEqual(other.code, 0);
  // Nothing but loopback inside: no route anywhere else (checked without sending a packet).
  assert.equal((await smolvm.exec({ name: "net", argv: ["ls", "/sys/class/net"] })).stdout.trim(), "lo");
  await smolvm.delete("net");
});

test("a guest allowed only 127.0.0.2/32 cannot reach a listener on 127.0.0.1", async () => {
  const { smolvm } = await machine("1.8.0", ["127.0.0.2/32"]);
  const r = await smolvm.exec({ name: "net", argv: dial("127.0.0.1") });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /refused/i);
  await smolvm.delete("net");
});

test("a guest created without an allowlist has no network at all", async () => {
  const { smolvm } = await machine("1.8.0", []);
  const r = await smolvm.exec({ name: "net", argv: ["sh", "-c", "ls /sys/class/net"] });
  assert.equal(r.stdout.trim(), "lo");
  await smolvm.delete("net");
});

test("the stand-in logs and refuses a subcommand it does not know, and a broad allowlist it cannot imitate", async () => {
  const fake = fakeSmolvm("0.8.0");
  fakes.push(fake);
  const r = await run(["smolvm", "machine", "run", "--image", "alpine"], { env: fake.env, expect: [2] });
  assert.match(r.stderr, /unrecognized subcommand 'machine run'/);
  assert.deepEqual(fake.calls().map((c) => c.argv), [["machine", "run", "--image", "alpine"]]);
  const smolvm = await openSmolvm({ env: fake.env, settleMs: 0 });
  await smolvm.create({ name: "wide", from: artifact, allowCidrs: ["10.0.0.0/8"], env: {} });
  await assert.rejects(smolvm.start("wide"), /only single-address IPv4 allowlists/);
  const started = await run(["docker", "ps", "-aq", "--filter", "label=bot-bottle.fake-smolvm.machine=wide"]);
  assert.equal(started.stdout.trim(), "", "refused before any container was made");
  const unset = await run(["smolvm", "--version"], { env: { ...fake.env, FAKE_SMOLVM_LOG: undefined }, expect: [97] });
  assert.match(unset.stderr, /set FAKE_SMOLVM_LOG/);
});

test("a machine start without socat on PATH fails naming it, and leaves no guest running", async () => {
  // PATH as it is, minus socat: one folder of links to every other program on it.
  const bin = join(dir, "no-socat-bin");
  mkdirSync(bin);
  for (const d of (process.env.PATH ?? "").split(":").filter((d) => d && existsSync(d))) {
    for (const name of readdirSync(d)) {
      if (name !== "socat" && !existsSync(join(bin, name))) symlinkSync(join(d, name), join(bin, name));
    }
  }
  const fake = fakeSmolvm("1.8.0");
  fakes.push(fake);
  const smolvm = await openSmolvm({ env: { ...fake.env, PATH: `${FAKE_SMOLVM_DIR}:${bin}` }, settleMs: 0 });
  await smolvm.create({ name: "nosocat", from: artifact, allowCidrs: ["127.0.0.1/32"], env: {} });
  await assert.rejects(smolvm.start("nosocat"), /the stand-in needs socat on PATH to relay allowed addresses into the guest/);
  assert.notEqual((await smolvm.status("nosocat")).state, "running");
  const running = await run(["docker", "ps", "-q", "--filter", "label=bot-bottle.fake-smolvm.machine=nosocat"]);
  assert.equal(running.stdout.trim(), "", "a failed start left its guest running");
  await smolvm.delete("nosocat");
});
