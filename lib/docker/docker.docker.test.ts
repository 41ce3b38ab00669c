// The docker driver against a real engine: a bottle-shaped layout (an --internal network
// for the agent side, an egress network for the bundle only), aliases, loopback port
// publishing, env by name, exec exit codes, listing by label, and cleanup.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import process from "node:process";
import { after, before, test } from "node:test";
import { isBbError } from "../errors.ts";
import { setLogLevel } from "../log.ts";
import { ANY_EXIT } from "../proc.ts";
import {
  LABEL,
  bottleLabels,
  connectNetwork,
  createNetwork,
  dockerInfo,
  execIn,
  hostPort,
  inspectContainer,
  isNameInUse,
  listContainers,
  listNetworks,
  removeContainer,
  removeNetwork,
  runContainer,
} from "./index.ts";

const BASE = "debian:bookworm-slim";
const id = randomBytes(3).toString("hex");
const slug = `drvtest-${id}`;
const net = { internal: `bbt-${id}-int`, egress: `bbt-${id}-egress` };
const box = { bundle: `bbt-${id}-bundle`, agent: `bbt-${id}-agent`, internet: `bbt-${id}-internet` };
const secret = `s3cr3t-${randomBytes(8).toString("hex")}`;
const labels = (role: Parameters<typeof bottleLabels>[0]["role"]) =>
  bottleLabels({ slug, backend: "docker", agent: "tester", stateRoot: null, role, extra: { [LABEL.test]: "1" } });

// A tiny TCP server that greets with its hostname: enough to prove who answered.
const GREETER = [
  "perl",
  "-MIO::Socket::INET",
  "-e",
  '$s=IO::Socket::INET->new(LocalPort=>8080,Listen=>5,ReuseAddr=>1) or die $!; while($c=$s->accept){print $c "hello-from-$ENV{HOSTNAME}\\n"; close $c}',
];

let debugLog = "";

before(async () => {
  await dockerInfo();
  await createNetwork({ name: net.internal, internal: true, labels: labels("network-internal") });
  await createNetwork({ name: net.egress, labels: labels("network-egress") });
  // Capture the debug log of the run that carries the secret, to prove argv never holds it.
  const original = process.stderr.write;
  setLogLevel("debug");
  process.stderr.write = ((chunk: string | Uint8Array) => {
    debugLog += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    await runContainer({
      name: box.bundle,
      image: BASE,
      labels: labels("bundle"),
      network: net.internal,
      aliases: ["firewall", "git-gate"],
      hostname: "bundle",
      env: { BB_TEST_SECRET: secret },
      publish: [8080],
      init: true,
      cmd: GREETER,
    });
  } finally {
    process.stderr.write = original;
    setLogLevel("info");
  }
  await connectNetwork({ network: net.egress, container: box.bundle, aliases: ["bundle-out"] });
  const { host, port } = await hostPort(box.bundle, 8080);
  await waitForGreeting(host, port);
  // A stand-in for the outside world, on the egress network only.
  await runContainer({
    name: box.internet,
    image: BASE,
    labels: { [LABEL.slug]: slug, [LABEL.test]: "1" },
    network: net.egress,
    aliases: ["internet"],
    hostname: "internet",
    init: true,
    cmd: GREETER,
  });
  await runContainer({
    name: box.agent,
    image: BASE,
    labels: labels("agent"),
    network: net.internal,
    hostname: "agent",
    cmd: ["sleep", "infinity"],
  });
});

after(async () => {
  for (const c of Object.values(box)) await removeContainer(c);
  for (const n of Object.values(net)) await removeNetwork(n);
});

test("a container gets its labels, both networks and its aliases on each", async () => {
  const info = await inspectContainer(box.bundle);
  assert.ok(info);
  assert.equal(info.name, box.bundle);
  assert.equal(info.state.running, true);
  assert.equal(info.labels[LABEL.slug], slug);
  assert.equal(info.labels[LABEL.role], "bundle");
  assert.equal(info.labels[LABEL.backend], "docker");
  assert.deepEqual(Object.keys(info.networks).sort(), [net.egress, net.internal].sort());
  assert.ok(info.networks[net.internal]!.aliases.includes("firewall"));
  assert.ok(info.networks[net.internal]!.aliases.includes("git-gate"));
  assert.ok(info.networks[net.egress]!.aliases.includes("bundle-out"));
  assert.ok(!info.networks[net.egress]!.aliases.includes("firewall"));
});

test("the agent reaches the bundle by alias on the internal network", async () => {
  const r = await execIn(box.agent, ["bash", "-c", "exec 3<>/dev/tcp/firewall/8080 && timeout 5 cat <&3"], { timeoutMs: 15_000 });
  assert.equal(r.stdout.trim(), "hello-from-bundle");
});

test("a container on the egress network only answers the bundle, not the agent", async () => {
  const ip = (await inspectContainer(box.internet))!.networks[net.egress]!.ipAddress;
  const dial = (from: string) =>
    execIn(from, ["timeout", "3", "bash", "-c", `exec 3<>/dev/tcp/${ip}/8080 && cat <&3`], { expect: [0, 1, 124], timeoutMs: 15_000 });
  let fromBundle = await dial(box.bundle);
  for (let i = 0; fromBundle.code !== 0 && i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100)); // the greeter may still be starting
    fromBundle = await dial(box.bundle);
  }
  assert.equal(fromBundle.stdout.trim(), "hello-from-internet");
  const fromAgent = await dial(box.agent);
  assert.notEqual(fromAgent.code, 0);
  assert.equal(fromAgent.stdout, "");
});

test("a published port lands on a random 127.0.0.1 port that answers from the host", async () => {
  const { host, port } = await hostPort(box.bundle, 8080);
  assert.equal(host, "127.0.0.1");
  assert.ok(port > 0);
  const info = await inspectContainer(box.bundle);
  assert.deepEqual(info!.ports["8080/tcp"], [{ hostIp: "127.0.0.1", hostPort: port }]);
  assert.equal(await readGreeting(host, port), "hello-from-bundle");
});

test("env passed by name reaches the container, but never argv or the debug log", async () => {
  const info = await inspectContainer(box.bundle);
  assert.equal(info!.env.BB_TEST_SECRET, secret);
  assert.match(debugLog, /docker run .*-e BB_TEST_SECRET /);
  assert.ok(!debugLog.includes(secret), "the secret value appeared in the debug log");
  const exec = await execIn(box.bundle, ["sh", "-c", 'printf %s "$V"'], { env: { V: "by-name" } });
  assert.equal(exec.stdout, "by-name");
});

test("execIn() returns an expected exit code and throws a DOCKER error naming an unexpected one", async () => {
  const ok = await execIn(box.agent, ["sh", "-c", "exit 3"], { expect: [3] });
  assert.equal(ok.code, 3);
  await assert.rejects(execIn(box.agent, ["sh", "-c", "echo nope >&2; exit 4"]), (e) => {
    assert.ok(isBbError(e));
    assert.equal(e.code, "DOCKER");
    assert.match(e.message, /exited 4: nope/);
    return true;
  });
  const echoed = await execIn(box.agent, ["cat"], { input: "via stdin" });
  assert.equal(echoed.stdout, "via stdin");
});

test("execIn() of a command the runtime cannot start (126) captures no stdout: the runtime's line is on stderr, and the error's message", async () => {
  const r = await execIn(box.agent, ["no-such-program"], { expect: ANY_EXIT });
  assert.equal(r.code, 126);
  assert.equal(r.stdout, "", "the runtime's line was captured as the command's output");
  assert.match(r.stderr, /^OCI runtime exec failed: exec failed: .*"no-such-program": executable file not found/);
  await assert.rejects(execIn(box.agent, ["no-such-program"], { what: "Cannot run it" }), (e) => {
    assert.ok(isBbError(e));
    assert.match(e.message, /^Cannot run it: docker exec \S+ no-such-program exited 126: OCI runtime exec failed: exec failed: .*executable file not found/);
    return true;
  });
  // A command's own stdout, on that exit code too, is its own.
  const own = await execIn(box.agent, ["sh", "-c", "echo 'OCI runtime exec failed: mine'; exit 126"], { expect: [126] });
  assert.deepEqual([own.stdout, own.stderr], ["OCI runtime exec failed: mine\n", ""]);
});

test("listing by label finds this bottle's containers and networks and nothing else", async () => {
  const containers = await listContainers({ [LABEL.test]: "1", [LABEL.slug]: slug });
  assert.deepEqual(containers.map((c) => c.name).sort(), Object.values(box).sort());
  assert.equal(containers.find((c) => c.name === box.bundle)!.labels[LABEL.role], "bundle");
  const networks = await listNetworks({ [LABEL.slug]: slug });
  assert.deepEqual(
    networks.map((n) => [n.name, n.internal, n.labels[LABEL.role]]).sort(),
    [
      [net.egress, false, "network-egress"],
      [net.internal, true, "network-internal"],
    ].sort(),
  );
  assert.deepEqual(await listContainers({ [LABEL.slug]: `${slug}-other` }), []);
});

test("removal is idempotent and errors name what failed", async () => {
  const name = `bbt-${id}-gone`;
  await runContainer({ name, image: BASE, labels: labels("agent"), cmd: ["sleep", "60"] });
  assert.equal((await inspectContainer(name))!.state.running, true);
  assert.equal(await removeContainer(name), true);
  assert.equal(await removeContainer(name), false);
  assert.equal(await inspectContainer(name), null);
  assert.equal(await removeNetwork(`bbt-${id}-never`), false);
  await assert.rejects(createNetwork({ name: net.internal, internal: true, labels: labels("network-internal") }), (e) => {
    assert.ok(isBbError(e));
    assert.match(e.message, new RegExp(`^Cannot create network ${net.internal}: `));
    return true;
  });
});

async function waitForGreeting(host: string, port: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if ((await readGreeting(host, port)) !== "") return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function readGreeting(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    const s = connect({ host, port });
    s.setTimeout(5000, () => s.destroy(new Error("timed out")));
    s.on("data", (b) => (data += b));
    s.on("end", () => resolve(data.trim()));
    s.on("error", reject);
  });
}

test("a name already in use fails with an error isNameInUse() knows, and the container of that name is untouched", async () => {
  const before = await inspectContainer(box.agent);
  const err = await runContainer({ name: box.agent, image: BASE, labels: labels("agent"), network: net.internal, cmd: ["true"] }).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(isNameInUse(err), String(err));
  assert.deepEqual((await inspectContainer(box.agent))?.state, before?.state);
});

test("networks docker made twice under one name (created at the same moment) are all removed by that name", async () => {
  const name = `bbt-${id}-twice`;
  // Docker checks names before it creates, so calls at the same moment each make one; on a
  // busy engine they can come one after the other (one made, three refused): tried again.
  let ids: string[] = [];
  try {
    for (let round = 0; round < 5 && ids.length < 2; round++) {
      while (await removeNetwork(name)); // a round that made one: gone before the next
      const made = await Promise.allSettled([1, 2, 3, 4].map(() => createNetwork({ name, labels: labels("network-egress") })));
      ids = made.filter((m) => m.status === "fulfilled").map((m) => (m as PromiseFulfilledResult<string>).value);
    }
    assert.ok(ids.length >= 2, `docker made ${ids.length} network(s) named ${name} in each of 5 rounds: the race did not happen`);
    assert.equal(await removeNetwork(name), true);
    for (const n of ids) assert.equal(await removeNetwork(n), false, `network ${n} is left`);
    assert.equal(await removeNetwork(name), false);
  } finally {
    // Whatever failed above, no network of this test's is left behind.
    for (const n of [...ids, name]) while (await removeNetwork(n).catch(() => false));
  }
});
