// The driver against the smolvm stand-in, for what needs no docker: version detection,
// dialect (a driver speaking the wrong release's dialect must fail), error shape, and the
// allowlist patch in a real SQLite file. Machines here are only created, never started.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { after, test } from "node:test";
import { fakeSmolvm, type FakeSmolvm } from "../../tests/fakes/smolvm/harness.ts";
import { isBbError } from "../errors.ts";
import { run } from "../proc.ts";
import { openSmolvm, parseLs, parseStatus, smolvmFor } from "./driver.ts";
import { readMachineRecord, stateDbPath } from "./state-db.ts";
import { parseVersion } from "./version.ts";

const fakes: FakeSmolvm[] = [];
after(async () => {
  for (const f of fakes) await f.cleanup();
});

function setup(version: string) {
  const fake = fakeSmolvm(version);
  fakes.push(fake);
  const artifact = join(fake.home, "img.smolmachine");
  writeFileSync(artifact, "not opened until start");
  return { fake, artifact };
}

test("openSmolvm() asks --version once and picks the dialect of that release", async () => {
  const { fake } = setup("0.8.1");
  const smolvm = await openSmolvm({ env: fake.env });
  assert.equal(smolvm.version.text, "0.8.1");
  assert.equal(smolvm.caps.nameStyle, "mixed");
  await smolvm.ls();
  await smolvm.ls();
  assert.deepEqual(
    fake.calls().map((c) => c.argv),
    [["--version"], ["machine", "ls", "--json"], ["machine", "ls", "--json"]],
  );
});

test("a driver speaking 1.x's --name dialect to smolvm 0.8.0 fails with the CLI's own complaint", async () => {
  const { fake, artifact } = setup("0.8.0");
  const wrong = smolvmFor(parseVersion("1.8.0"), { env: fake.env });
  await assert.rejects(wrong.create({ name: "m1", from: artifact, allowCidrs: [], env: {} }), (e) => {
    assert.ok(isBbError(e) && e.code === "SMOLVM");
    assert.match(e.message, /unexpected argument '--name' found/);
    assert.deepEqual((e.details.argv as string[]).slice(1, 5), ["machine", "create", "--name", "m1"]);
    assert.equal(e.details.exitCode, 2);
    return true;
  });
  assert.deepEqual(await wrong.ls(), []);
});

test("a driver speaking 0.8's positional dialect to smolvm 1.0.2 fails on create and on delete", async () => {
  const { fake, artifact } = setup("1.0.2");
  const wrong = smolvmFor(parseVersion("0.8.0"), { env: fake.env });
  await assert.rejects(wrong.create({ name: "m1", from: artifact, allowCidrs: [], env: {} }), /unexpected argument 'm1' found/);
  const right = await openSmolvm({ env: fake.env });
  await right.create({ name: "m1", from: artifact, allowCidrs: [], env: {} });
  await assert.rejects(wrong.delete("m1"), /unexpected argument 'm1' found/);
  await right.delete("m1");
  assert.deepEqual(await right.ls(), []);
});

test("a failing subcommand throws SMOLVM with argv and smolvm's stderr", async () => {
  const { fake } = setup("1.8.0");
  const smolvm = await openSmolvm({ env: fake.env });
  await assert.rejects(smolvm.start("ghost"), (e) => {
    assert.ok(isBbError(e) && e.code === "SMOLVM");
    assert.match(e.message, /Cannot start smolvm machine ghost/);
    assert.match(String(e.details.stderr), /machine 'ghost' not found/);
    assert.deepEqual(e.details.argv, [smolvm.bin, "machine", "start", "--name", "ghost"]);
    return true;
  });
});

// The test's own limit: without the driver's, the first call would wait forever.
test("stop, delete, ls and status give up on a smolvm that never answers (TIMEOUT, naming the call)", { timeout: 60_000 }, async () => {
  const { fake, artifact } = setup("1.8.0");
  await (await openSmolvm({ env: fake.env })).create({ name: "m1", from: artifact, allowCidrs: [], env: {} });
  const hung = { ...fake.env, FAKE_SMOLVM_HANG: "machine stop,machine delete,machine ls,machine status" };
  const smolvm = smolvmFor(parseVersion("1.8.0"), { env: hung, controlCallMs: 1500 });
  for (const [call, what] of [
    [() => smolvm.stop("m1"), /Cannot stop smolvm machine m1: smolvm machine stop --name m1 did not finish within 1500ms/],
    [() => smolvm.delete("m1"), /Cannot delete smolvm machine m1: smolvm machine delete --name m1 -f did not finish within 1500ms/],
    [() => smolvm.ls(), /Cannot list smolvm machines: smolvm machine ls --json did not finish within 1500ms/],
    [() => smolvm.status("m1"), /Cannot read the status of smolvm machine m1: smolvm machine status --name m1 did not finish within 1500ms/],
  ] as const) {
    await assert.rejects(call(), (e) => isBbError(e) && e.code === "TIMEOUT" && what.test(e.message));
  }
  // With the CLI answering again, the machine is there to remove.
  await (await openSmolvm({ env: fake.env })).delete("m1");
});

test("create and start give up on a smolvm that never answers (TIMEOUT), and a create killed that way leaves no machine", { timeout: 60_000 }, async () => {
  const { fake, artifact } = setup("1.8.0");
  const answering = await openSmolvm({ env: fake.env });
  await answering.create({ name: "m1", from: artifact, allowCidrs: [], env: {} });
  const hung = smolvmFor(parseVersion("1.8.0"), { env: { ...fake.env, FAKE_SMOLVM_HANG: "machine create,machine start" }, bootCallMs: 1500 });
  await assert.rejects(hung.start("m1"), (e) => isBbError(e) && e.code === "TIMEOUT" && /Cannot start smolvm machine m1: smolvm machine start --name m1 did not finish within 1500ms/.test(e.message));
  await assert.rejects(hung.create({ name: "m2", from: artifact, allowCidrs: [], env: {} }), (e) => isBbError(e) && e.code === "TIMEOUT" && /Cannot create smolvm machine m2/.test(e.message));
  assert.deepEqual(fake.calls().slice(-2).map((c) => c.argv.slice(0, 3)), [["machine", "create", "--name"], ["machine", "delete", "--name"]], "the timed-out create's machine was deleted");
  assert.deepEqual((await answering.ls()).map((m) => [m.name, m.state]), [["m1", "stopped"]]);
  await answering.delete("m1");
});

test("0.8.0 stores allowed_cidrs null with --from; the driver writes the CIDR in as a BLOB and reads it back", async () => {
  const { fake, artifact } = setup("0.8.0");
  const smolvm = await openSmolvm({ env: fake.env });
  // What smolvm itself leaves behind, without the patch:
  await run(["smolvm", "machine", "create", "--from", artifact, "--net", "--allow-cidr", "127.0.0.1/32", "bare"], { env: fake.env });
  assert.equal((await readMachineRecord({ dbPath: fake.db, name: "bare" })).allowed_cidrs, null);
  await smolvm.delete("bare");

  const r = await smolvm.create({ name: "m1", from: artifact, allowCidrs: ["127.0.0.1/32"], env: { A: "1" } });
  assert.deepEqual(r, { allowlistPatched: true });
  const doc = await readMachineRecord({ dbPath: fake.db, name: "m1" });
  assert.deepEqual(doc.allowed_cidrs, ["127.0.0.1/32"]);
  assert.equal(doc.network, true);
  assert.deepEqual(doc.env, ["A=1"], "the rest of the document is kept");
  const type = await run(["sqlite3", fake.db, "SELECT typeof(data) FROM vms WHERE name = 'm1';"]);
  assert.equal(type.stdout.trim(), "blob");
  const [listed] = await smolvm.ls();
  assert.deepEqual(listed?.raw.allowed_cidrs, ["127.0.0.1/32"], "smolvm reads the patched row");
});

test("a user's ~/.sqliterc (headers on, column mode) changes nothing the driver reads from or writes to the state DB", async () => {
  const { fake, artifact } = setup("0.8.0");
  // sqlite3 reads the init file of the user's passwd home whatever HOME says; this wrapper
  // hands it one such file the way that default does, ahead of the driver's own arguments.
  const rc = join(fake.home, "sqliterc");
  writeFileSync(rc, ".headers on\n.mode column\n");
  const sqlite3 = join(fake.home, "sqlite3-with-rc");
  writeFileSync(sqlite3, `#!/bin/sh\nexec sqlite3 -init ${rc} "$@"\n`, { mode: 0o755 });
  const smolvm = await openSmolvm({ env: fake.env, sqlite3 });
  assert.deepEqual(await smolvm.create({ name: "m1", from: artifact, allowCidrs: ["127.0.0.16/32"], env: {} }), { allowlistPatched: true });
  assert.deepEqual((await readMachineRecord({ dbPath: fake.db, name: "m1", sqlite3 })).allowed_cidrs, ["127.0.0.16/32"]);
});

test("0.8.1 and 1.0.2 drop the allowlist too and get it patched", async () => {
  for (const v of ["0.8.1", "1.0.2"]) {
    const { fake, artifact } = setup(v);
    const smolvm = await openSmolvm({ env: fake.env });
    assert.deepEqual(await smolvm.create({ name: "m1", from: artifact, allowCidrs: ["127.0.0.16/32"], env: {} }), { allowlistPatched: true }, v);
    assert.deepEqual((await readMachineRecord({ dbPath: fake.db, name: "m1" })).allowed_cidrs, ["127.0.0.16/32"], v);
  }
});

test("1.8.0 keeps --allow-cidr itself: the driver reads it back from machine ls and does not touch the state DB", async () => {
  const { fake, artifact } = setup("1.8.0");
  // No sqlite3 at all: any attempt to patch would fail the create.
  const smolvm = await openSmolvm({ env: fake.env, sqlite3: "/nonexistent/sqlite3" });
  assert.deepEqual(await smolvm.create({ name: "m1", from: artifact, allowCidrs: ["127.0.0.1/32"], env: {} }), { allowlistPatched: false });
  assert.deepEqual((await readMachineRecord({ dbPath: fake.db, name: "m1" })).allowed_cidrs, ["127.0.0.1/32"]);
  assert.deepEqual(fake.calls().map((c) => c.argv.slice(0, 2).join(" ")), ["--version", "machine create", "machine ls"]);
});

test("a release taken to keep --allow-cidr that drops it after all: the machine is deleted before it ever starts", async () => {
  // A driver for 1.8.0 talking to a release that drops the allowlist with --from (1.0.2's
  // behaviour, same --name dialect): what a regression in a later smolvm would look like.
  const { fake, artifact } = setup("1.0.2");
  const smolvm = smolvmFor(parseVersion("1.8.0"), { env: fake.env });
  await assert.rejects(smolvm.create({ name: "m1", from: artifact, allowCidrs: ["127.0.0.16/32"], env: {} }), (e) => {
    assert.ok(isBbError(e) && e.code === "SMOLVM");
    assert.match(e.message, /^smolvm 1\.8\.0 made machine m1 with allowed_cidrs=\[\] \(read back from smolvm machine ls\), not \["127\.0\.0\.16\/32"\] as asked: it was deleted, never started/);
    return true;
  });
  assert.deepEqual(await smolvm.ls(), []);
  assert.ok(!fake.calls().some((c) => c.argv[1] === "start"));
});

/** Run `fn` with the warnings the logger writes to stderr collected into `into`. */
async function withWarnings(into: string[], fn: () => Promise<unknown>): Promise<void> {
  const original = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    into.push(...String(chunk).split("\n").filter((l) => l.startsWith("warning: ")));
    return true;
  }) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stderr.write = original;
  }
}

test("where machine ls shows no allowlist the state DB is read; where neither can, the driver says so and goes on", async () => {
  const { fake, artifact } = setup("1.8.0");
  // A smolvm whose `machine ls --json` prints no allowed_cidrs.
  const bin = join(fake.home, "smolvm-quiet-ls");
  writeFileSync(bin, `#!/bin/sh\nif [ "$1 $2" = "machine ls" ]; then smolvm "$@" | jq 'map(del(.allowed_cidrs))'; else exec smolvm "$@"; fi\n`, { mode: 0o755 });
  const smolvm = smolvmFor(parseVersion("1.8.0"), { bin, env: fake.env });
  assert.deepEqual(await smolvm.create({ name: "m1", from: artifact, allowCidrs: ["127.0.0.1/32"], env: {} }), { allowlistPatched: false });
  assert.ok(!("allowed_cidrs" in (await smolvm.ls())[0]!.raw));
  // The state DB holds a dropped allowlist: refused as above.
  const dropped = smolvmFor(parseVersion("1.8.0"), { bin, env: { ...fake.env, FAKE_SMOLVM_VERSION: "1.0.2" } });
  await assert.rejects(dropped.create({ name: "m2", from: artifact, allowCidrs: ["127.0.0.1/32"], env: {} }), /made machine m2 with allowed_cidrs=\[\] \(read back from smolvm's state DB /);
  // No state DB where it was looked for either: a warning, and the machine stands.
  const warnings: string[] = [];
  const unknown = smolvmFor(parseVersion("1.8.0"), { bin, env: fake.env, stateDb: join(fake.home, "no-such.db") });
  await withWarnings(warnings, () => unknown.create({ name: "m3", from: artifact, allowCidrs: ["127.0.0.1/32"], env: {} }));
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.deepEqual((await smolvm.ls()).map((m) => m.name).sort(), ["m1", "m3"]);
  assert.match(warnings[0]!, /cannot read back machine m3's allowlist .*trusting --allow-cidr 127\.0\.0\.1\/32/);
});

test("a failed allowlist patch deletes the machine it just created", async () => {
  const { fake, artifact } = setup("0.8.0");
  const smolvm = await openSmolvm({ env: fake.env, sqlite3: "/nonexistent/sqlite3" });
  await assert.rejects(smolvm.create({ name: "m1", from: artifact, allowCidrs: ["127.0.0.1/32"], env: {} }), (e) => isBbError(e) && e.code === "SMOLVM");
  assert.deepEqual(await smolvm.ls(), []);
  assert.deepEqual(
    fake.calls().map((c) => c.argv.slice(0, 3)),
    [["--version"], ["machine", "create", "--from"], ["machine", "delete", "-f"], ["machine", "ls", "--json"]],
  );
});

test("stateDbPath() follows smolvm's layout on macOS and Linux", () => {
  assert.equal(stateDbPath({ platform: "darwin", home: "/Users/a", env: {} }), "/Users/a/Library/Application Support/smolvm/server/smolvm.db");
  assert.equal(stateDbPath({ platform: "linux", home: "/home/a", env: {} }), "/home/a/.local/share/smolvm/server/smolvm.db");
  assert.equal(stateDbPath({ platform: "linux", home: "/home/a", env: { XDG_DATA_HOME: "/d" } }), "/d/smolvm/server/smolvm.db");
});

test("parseLs() reads objects whose keys come in any order and rejects other shapes", () => {
  const ms = parseLs('[{"pid":null,"image":null,"network":true,"created_at":"2026-01-01T00:00:00Z","state":"stopped","name":"a","extra":1}]');
  assert.deepEqual(ms.map(({ raw: _raw, ...m }) => m), [{ name: "a", state: "stopped", pid: null, network: true, image: null, createdAt: "2026-01-01T00:00:00Z" }]);
  assert.equal(ms[0]?.raw.extra, 1);
  assert.throws(() => parseLs('{"name":"a"}'), (e) => isBbError(e) && e.code === "SMOLVM");
  assert.throws(() => parseLs('[{"name":"a"}]'), /state/);
  assert.throws(() => parseLs("Name  State"), /as JSON/);
});

test("parseStatus() finds the state word in smolvm's status text", () => {
  assert.equal(parseStatus("m", "Machine 'm': running (PID 42)\n").state, "running");
  assert.equal(parseStatus("m", "Machine 'm': stopped").state, "stopped");
  assert.equal(parseStatus("m", "???").state, "unknown");
});

test("status() reads the machine's state, not a state word in its name (an agent called error-triage or running-coach)", async () => {
  const { fake, artifact } = setup("1.8.0");
  const smolvm = await openSmolvm({ env: fake.env });
  await smolvm.create({ name: "bb-running-coach-ab12", from: artifact, allowCidrs: [], env: {} });
  assert.equal((await smolvm.status("bb-running-coach-ab12")).state, "created");
  // A running one (the stand-in's text for it; starting it needs docker).
  assert.equal(parseStatus("bb-error-triage-k3x9", "Machine 'bb-error-triage-k3x9': running (PID 42)\n").state, "running");
  assert.equal(parseStatus("bb-stopped-bot-x1y2", "Machine 'bb-stopped-bot-x1y2': running (PID 42)").state, "running");
});
