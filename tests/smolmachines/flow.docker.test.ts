// The smolmachines backend end to end: `just run agent=shell backend=smolmachines -- CMD`
// with real docker for the bundle and the smolvm stand-in (tests/fakes/smolvm) for the VM.
// The stand-in's VM is a container with no network but TCP relays to host listeners on
// its allowlisted addresses (its imitation of TSI), so everything the agent reaches here
// it reaches through the bundle's published loopback ports.
import assert from "node:assert/strict";
import net from "node:net";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, test, type TestContext } from "node:test";
import { imageId } from "../../lib/docker/index.ts";
import { ensureImage } from "../../lib/images/mod.ts";
import type { ListRow } from "../../lib/inventory/format.ts";
import { names, PORTS } from "../../lib/layout.ts";
import { readPlanFile } from "../../lib/plan/io.ts";
import { run } from "../../lib/proc.ts";
import { artifactPath } from "../../smolmachine-pack/pack.ts";
import { listMachines } from "../fakes/smolvm/state.ts";
import { calls, leftovers, startFlow, tool, verbs, type Flow } from "./flow.ts";
import { AGENT_MEMORY_MIB } from "../../lib/vm/limits.ts";

const INSIDE = readFileSync(new URL("./testdata/inside.sh", import.meta.url), "utf8");

let cacheDir: string;
let artifact: string;

// One pack cache per test process. `deno test --filter` skips the file-level after hook,
// so each run also sweeps the caches of runs whose process is gone (a 1.2 GB artifact each).
const CACHE_PREFIX = "bb-smol-cache-";

function sweepStaleCaches(): void {
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(/^bb-smol-cache-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    }
  }
}

before(async () => {
  sweepStaleCaches();
  cacheDir = mkdtempSync(join(tmpdir(), `${CACHE_PREFIX}${process.pid}-`));
  // The agent image bb-vm would use (built already on this machine; reused, not rebuilt).
  const agent = await ensureImage("agent");
  const id = await imageId(agent.ref);
  assert.ok(id, `docker has no image ${agent.ref}`);
  artifact = artifactPath(join(cacheDir, "smolmachines"), id);
});

after(() => rmSync(cacheDir, { recursive: true, force: true }));

/** The key=value lines inside.sh printed. */
function report(flow: Flow): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of flow.stdout().split("\n")) {
    const m = /^([a-z0-9_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** The bundle's host port for an agent-facing container port, asked of docker itself. */
async function published(slug: string, port: number): Promise<string> {
  return (await run(["docker", "port", names.bundle(slug), `${port}/tcp`])).stdout.trim().split("\n")[0]!;
}

async function bridgeAddress(slug: string): Promise<string> {
  const r = await run(["docker", "inspect", "--format", `{{(index .NetworkSettings.Networks "${names.egressNet(slug)}").IPAddress}}`, names.bundle(slug)]);
  return r.stdout.trim();
}

/** Send `text` to addr:port and read until the peer closes (or 5 s pass). */
function exchange(host: string, port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    const s = net.connect(port, host, () => s.write(text));
    const done = () => (s.destroy(), resolve(got));
    s.setTimeout(5000, done);
    s.on("data", (d) => (got += d)).on("close", done).on("error", done);
  });
}

/** The full flow for one smolvm release; returns what the test asserts on. */
async function fullFlow(t: TestContext, version: string, words: string[] = []) {
  // A host service on 127.0.0.1: the bottle's VM must not reach it (its allowlist is the
  // bottle's own loopback address). Listening before the flow starts, so a relay to it
  // would exist if the allowlist let it through.
  const hostService = net.createServer((c) => c.end("host-secret\n")).listen(0, "127.0.0.1");
  await new Promise((r) => hostService.once("listening", r));
  t.after(() => hostService.close());
  const flow = await startFlow(t, { version, cacheDir, command: ["sh", "-c", INSIDE], words });
  await flow.line(/^READY$/);
  const slug = flow.slug();
  const plan = await readPlanFile(join(flow.stateRoot, "bottles", slug, "plan.json"));
  const keyFile = plan.bundle!.agentKeyFile!;
  const key = readFileSync(keyFile, "utf8");
  const running = {
    slug,
    key,
    keyFileMode: statSync(keyFile).mode & 0o777,
    // Every file of the flow's (its state, its TMPDIR, smolvm's state DB and call log) that
    // holds the key, while the agent runs: only the key's own.
    holdingKey: [flow.stateRoot, flow.tmp, flow.fake.home].flatMap((d) => filesHolding(d, key)),
    proxyPort: await published(slug, PORTS.firewall),
    supervisePort: await published(slug, PORTS.supervise),
    machines: await listMachines(flow.fake.home),
    caSha256: createHash("sha256").update(readFileSync(plan.bundle!.caCert)).digest("hex"),
    urls: plan.bundle!.agentUrls,
    // Any local user's process, without the agent's key, at the published ports.
    keyless: {
      proxy: await exchange(plan.bundle!.loopbackAddr!, plan.bundle!.hostPorts!.firewall!, "CONNECT other.invalid:443 HTTP/1.1\r\nHost: other.invalid:443\r\n\r\n"),
      supervise: await exchange(plan.bundle!.loopbackAddr!, plan.bundle!.hostPorts!.supervise!, `GET /mcp HTTP/1.1\r\nHost: ${plan.bundle!.loopbackAddr!}\r\nConnection: close\r\n\r\n`),
    },
    firewallLog: await run(["docker", "logs", names.bundle(slug)]).then((l) => l.stdout + l.stderr),
  };
  // The bundle's own address on its bridge: the VM must not reach it (only loopback is allowed).
  flow.send(`${await bridgeAddress(slug)}:${PORTS.firewall}\n`);
  flow.send(`127.0.0.1:${(hostService.address() as net.AddressInfo).port}\n`);
  flow.end();
  const code = await flow.exit;
  return { flow, code, ...running, loopback: plan.bundle!.loopbackAddr!, inside: report(flow), argv: flow.argvSeen(), left: await leftovers(flow, slug) };
}

function assertInside(r: Awaited<ReturnType<typeof fullFlow>>) {
  const { inside } = r;
  assert.equal(inside.user, "node");
  assert.match(r.loopback, /^127\.0\.0\.(1[6-9]|[2-9]\d|1\d\d|2[0-4]\d|25[0-4])$/, "each bottle has its own loopback address");
  assert.equal(r.proxyPort.split(":")[0], r.loopback, "the firewall is published on the bottle's loopback address only");
  // The ports are on host loopback, open to every local user: the agent's URLs carry the
  // bottle's key, and without it the firewall answers 407 and supervise 404.
  const { key } = r;
  assert.match(key, /^[0-9a-f]{48}$/);
  assert.equal(r.keyFileMode, 0o600);
  assert.equal(inside.proxy, `http://bb:${key}@${r.proxyPort}`, "HTTPS_PROXY is the firewall's published loopback port, with the key");
  assert.equal(inside.supervise, `http://${r.supervisePort}/${key}/mcp`);
  assert.match(r.keyless.proxy, /^HTTP\/1\.1 407 /);
  assert.match(r.keyless.supervise, /^HTTP\/1\.1 404 /);
  assert.ok(!r.keyless.proxy.includes(key) && !r.keyless.supervise.includes(key));
  // No other local user can learn it: it was on no command line of the flow's (smolvm's,
  // docker's, sqlite3's, skopeo's, ... or any other process's /proc showed), in no file but
  // its own 0600 one (not the plan, not smolvm's state DB), and in no log.
  assert.ok(r.argv.length > 50 && r.argv.some((a) => a.startsWith("smolvm machine create")) && r.argv.some((a) => / machine exec /.test(a)), `the argv watch saw too little:\n${r.argv.join("\n")}`);
  assert.deepEqual(r.argv.filter((a) => a.includes(key)), [], "the agent key was on a command line");
  assert.deepEqual(r.holdingKey, [join(r.flow.stateRoot, "bottles", r.slug, "agent-key")]);
  assert.ok(!JSON.stringify(r.urls).includes(key), "the plan's URLs carry the key");
  assert.ok(!r.firewallLog.includes(key), "the bundle's log holds the key");
  assert.ok(!r.flow.stderr().includes(key) && !r.flow.stdout().replaceAll(inside.proxy!, "").replaceAll(inside.supervise!, "").includes(key), "the flow said the key");
  // Provisioning ran for real: the bottle's own CA is trusted system-wide, ~/.gitconfig is
  // the agent's, the supervise MCP server is registered at the published port.
  assert.equal(inside.ca_sha256, r.caSha256);
  assert.equal(inside.ca_in_system_bundle, "yes");
  assert.equal(inside.gitconfig, "node main");
  assert.deepEqual(JSON.parse(inside.mcp!), { mcpServers: { supervise: { type: "http", url: inside.supervise } } });
  assert.equal(inside.supervise_init, '"serverInfo":{"name":"bot-bottle-supervise"');
  // The stand-in VM has no interface but lo: the proxy port came through the TSI relays.
  assert.equal(inside.interfaces, "lo ");
  // An undeclared host: the firewall's 403 through that port (curl exits 56 on a refused CONNECT).
  assert.equal(inside.curl_exit, "56");
  assert.match(r.flow.stdout(), /^curl: < HTTP\/1\.1 403 Forbidden$/m);
  assert.match(r.flow.stdout(), /^curl: < x-bot-bottle-firewall: blocked$/im);
  assert.match(r.firewallLog, /blocked CONNECT other\.invalid/);
  assert.equal(inside.bridge, "unreachable", "the VM reached the bundle's bridge address directly");
  assert.equal(inside.host_loopback, "unreachable", "the VM reached a host service on 127.0.0.1");
  assert.equal(r.code, 7, `the command's exit code comes back\n${r.flow.stderr()}`);
  assert.deepEqual(r.left, [], "nothing of the bottle remains after the flow");
}

/** The create call in the release's dialect, with the allowlist of the loopback address. */
function assertCreate(r: Awaited<ReturnType<typeof fullFlow>>, version: string) {
  const create = calls(r.flow).find((a) => verbs([a])[0] === "machine create")!;
  const name = names.machine(r.slug);
  const named = version.startsWith("0.") ? { head: [], tail: [name] } : { head: ["--name", name], tail: [] };
  assert.deepEqual(create.slice(0, 2 + named.head.length + 5), ["machine", "create", ...named.head, "--from", artifact, "--net", "--allow-cidr", `${r.loopback}/32`]);
  if (named.tail.length) assert.equal(create.at(-1), name);
  // The machine's environment is on smolvm's command line and in its state DB: none of the
  // bundle's URLs, which carry the key (the VM gets them from bb-provision's tar).
  const env = create.filter((_, i) => create[i - 1] === "-e");
  assert.ok(env.includes(`BB_SLUG=${r.slug}`), JSON.stringify(env));
  assert.ok(env.includes(`NO_PROXY=localhost,127.0.0.1,git-gate,supervise,${r.loopback}`), JSON.stringify(env));
  assert.deepEqual(env.filter((e) => /^(HTTPS?_PROXY|https?_proxy|BB_GIT_GATE_URL|BB_SUPERVISE_URL)=/.test(e)), [], JSON.stringify(env));
  // The shell bottle declares no limits: the default memory ceiling, smolvm's own vCPUs.
  assert.equal(create[create.indexOf("--mem") + 1], String(AGENT_MEMORY_MIB), create.join(" "));
  assert.ok(!create.includes("--cpus"), create.join(" "));
  assert.deepEqual(r.machines.map((m) => m.memory_mib), [AGENT_MEMORY_MIB]);
}

test("the first smolmachines start packs the agent image once; the next start reuses the cached .smolmachine", async (t) => {
  const first = await startFlow(t, { version: "1.8.0", cacheDir, command: ["true"] });
  assert.equal(await first.exit, 0, first.stderr());
  const packs = calls(first).filter((a) => verbs([a])[0] === "pack create");
  assert.equal(packs.length, 1, JSON.stringify(calls(first)));
  assert.match(packs[0]!.join(" "), /^pack create --image (localhost|127\.0\.0\.1):\d+\/bot-bottle\/agent:[0-9a-f]{16} -o \S+$/);
  assert.ok(existsSync(artifact), `the artifact is cached under the image ID: ${artifact}`);

  const second = await startFlow(t, { version: "1.8.0", cacheDir, command: ["true"] });
  assert.equal(await second.exit, 0, second.stderr());
  assert.ok(!verbs(calls(second)).includes("pack create"), JSON.stringify(verbs(calls(second))));
  const create = calls(second).find((a) => verbs([a])[0] === "machine create")!;
  assert.equal(create[create.indexOf("--from") + 1], artifact);
  assert.doesNotMatch(second.stderr(), /smolmachine: packing/);
});

test("smolvm 0.8.0: the flow writes the allowlist into the state DB, provisions the VM, reaches only the firewall's loopback port, returns the exit code and leaves nothing", async (t) => {
  const r = await fullFlow(t, "0.8.0");
  assertInside(r);
  // While it ran, the row held the allowlist create had dropped (0.8.0 stores null).
  assert.deepEqual(
    r.machines.map((m) => [m.name, m.state, m.network, m.allowed_cidrs]),
    [[names.machine(r.slug), "running", true, [`${r.loopback}/32`]]],
  );
  assert.match(r.flow.stderr(), /vm: wrote the allowlist into smolvm's state DB/);
  const cs = calls(r.flow);
  assert.deepEqual(verbs(cs).filter((v) => v !== "pack create"), ["machine create", "machine start", "machine exec", "machine exec", "machine ls", "machine stop", "machine delete"]);
  assertCreate(r, "0.8.0");
  const [provision, command] = cs.filter((a) => verbs([a])[0] === "machine exec");
  const dash = provision!.indexOf("--");
  assert.deepEqual(provision!.slice(2, 4), ["--name", names.machine(r.slug)]);
  assert.deepEqual(provision!.slice(dash - 1, dash + 2), ["-i", "--", "/usr/bin/env"], "provisioning is one root exec with the tar on stdin, in root's environment");
  assert.ok(provision!.includes("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") && provision!.includes("LD_PRELOAD="), provision!.join(" "));
  assert.equal(provision![provision!.indexOf("/bin/sh") + 1], "-c");
  assert.deepEqual(command!.slice(6, 9), ["runuser", "-u", "node"], "the command runs as node");
  assert.deepEqual(cs.at(-1), ["machine", "delete", "-f", names.machine(r.slug)]);
});

test("smolvm 1.8.0: create keeps the allowlist (read back, no state DB patch), and the same flow works with --name and a copied checkout", async (t) => {
  const checkout = mkdtempSync(join(tmpdir(), "bb-smol-cwd-"));
  t.after(() => rmSync(checkout, { recursive: true, force: true }));
  writeFileSync(join(checkout, "marker"), "from the host checkout\n");
  const r = await fullFlow(t, "1.8.0", [`cwd=${checkout}`]);
  assertInside(r);
  assert.equal(r.inside.workdir_marker, "from the host checkout");
  assert.deepEqual(
    r.machines.map((m) => [m.name, m.state, m.network, m.allowed_cidrs]),
    [[names.machine(r.slug), "running", true, [`${r.loopback}/32`]]],
  );
  assert.doesNotMatch(r.flow.stderr(), /wrote the allowlist/);
  const cs = calls(r.flow);
  assert.deepEqual(verbs(cs).filter((v) => v !== "pack create"), ["machine create", "machine ls", "machine start", "machine exec", "machine exec", "machine ls", "machine stop", "machine delete"]);
  assertCreate(r, "1.8.0");
  assert.deepEqual(cs.at(-1), ["machine", "delete", "--name", names.machine(r.slug), "-f"]);
});

test("a bottle of another state root (or user) never shares a running bottle's loopback address: its VM cannot reach that bottle's firewall", async (t) => {
  const first = await startFlow(t, { version: "1.8.0", cacheDir, command: ["sh", "-c", "echo READY; read -r _; exit 0"] });
  await first.line(/^READY$/);
  const firstSlug = first.slug();
  const firstAddr = (await readPlanFile(join(first.stateRoot, "bottles", firstSlug, "plan.json"))).bundle!.loopbackAddr!;
  const firewall = await published(firstSlug, PORTS.firewall);
  // Its own state root: nothing in it records the first bottle's address.
  const second = await startFlow(t, { version: "1.8.0", cacheDir, command: ["sh", "-c", INSIDE] });
  await second.line(/^READY$/);
  const plan = await readPlanFile(join(second.stateRoot, "bottles", second.slug(), "plan.json"));
  assert.notEqual(plan.bundle!.loopbackAddr, firstAddr, "the second bottle took the first one's loopback address");
  second.send(`${firewall}\n${firewall}\n`);
  second.end();
  assert.equal(await second.exit, 7, second.stderr());
  assert.equal(report(second).bridge, "unreachable", `the second bottle's VM reached the first bottle's firewall at ${firewall}`);
  first.end();
  assert.equal(await first.exit, 0, first.stderr());
});

test("bb-list shows a running smolmachines bottle with its machine, bundle, network and loopback address", async (t) => {
  const flow = await startFlow(t, { version: "1.8.0", cacheDir, command: ["sh", "-c", "echo READY; read -r _; exit 0"] });
  await flow.line(/^READY$/);
  const slug = flow.slug();
  const r = await tool(flow, "bb-list", ["--json"]);
  assert.equal(r.code, 0, r.stderr);
  const rows = (JSON.parse(r.stdout) as ListRow[]).filter((x) => x.slug === slug);
  assert.equal(rows.length, 1, r.stdout);
  const row = rows[0]!;
  assert.deepEqual([row.backend, row.agent, row.status, row.live], ["smolmachines", "shell", "running", true]);
  assert.deepEqual(row.services, ["firewall", "supervise"]);
  assert.deepEqual(row.machines, [{ name: names.machine(slug), state: "running" }]);
  assert.deepEqual(row.containers.map((c) => [c.name, c.role]), [[names.bundle(slug), "bundle"]]);
  assert.deepEqual(row.networks.map((n) => n.name), [names.egressNet(slug)]);
  assert.match(row.loopbackAddr ?? "", /^127\.0\.0\.\d+$/);
  assert.notEqual(row.loopbackAddr, "127.0.0.1");
  const table = await tool(flow, "bb-list", []);
  assert.match(table.stdout, new RegExp(`smolmachines\\s+${slug}\\s+shell`));
  flow.end();
  assert.equal(await flow.exit, 0, flow.stderr());
  assert.deepEqual(await leftovers(flow, slug), []);
});

// Killed at two points: while `machine start` runs (the row, with the patched allowlist,
// is written; the stand-in logs a call before doing anything), and while the command runs
// in the VM. Either way a plain bb-cleanup finds an orphan (its owner is recorded and gone)
// and removes it all, the machine through smolvm.
const KILL_POINTS = [
  { when: "during machine start", command: ["true"], cleanup: ["machine ls", "machine delete"] },
  { when: "while its command runs in the VM", command: ["sh", "-c", "echo READY; read -r _; exit 0"], cleanup: ["machine ls", "machine stop", "machine delete"] },
];

for (const k of KILL_POINTS) {
  test(`a smolmachines start SIGKILLed ${k.when} leaves nothing that bb-cleanup does not remove`, async (t) => {
    const flow = await startFlow(t, { version: "0.8.0", cacheDir, command: k.command });
    if (k.command[0] === "true") await until(() => verbs(calls(flow)).includes("machine start"), 120_000, () => flow.stderr());
    else await flow.line(/^READY$/);
    await flow.kill();
    const slug = flow.slug();
    const left = await leftovers(flow, slug);
    for (const what of [`machine ${names.machine(slug)}`, `container ${names.bundle(slug)}`, `network ${names.egressNet(slug)}`, `state dir ${slug}`]) {
      assert.ok(left.includes(what), `the kill left ${what}: ${JSON.stringify(left)}`);
    }
    flow.fake.clearCalls();
    const r = await tool(flow, "bb-cleanup", ["--yes", "--grace", "0", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(removed(r.stdout), removedAll(flow, slug), r.stdout + r.stderr);
    assert.deepEqual(verbs(calls(flow)), k.cleanup, "the machine went away through smolvm");
    // flow.sh's work dir moved into the bottle's state dir once bb-prepare named it, so
    // bb-cleanup took it too: nothing is left in $TMPDIR.
    assert.deepEqual(await leftovers(flow, slug), []);
  });
}

/** The file's bytes, or null for one only its daemon may read (the bundle's, when not root). */
function readable(path: string): Buffer | null {
  try {
    return readFileSync(path);
  } catch {
    return null;
  }
}

/** Regular files below `dir` whose bytes hold `text` (sockets, FIFOs and links passed by). */
function filesHolding(dir: string, text: string): string[] {
  const found: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) found.push(...filesHolding(path, text));
    else if (e.isFile() && readable(path)?.includes(text)) found.push(path);
  }
  return found;
}

function removed(stdout: string): string[] {
  const results = (JSON.parse(stdout) as { results: { kind: string; name: string; ok: boolean }[] | null }).results ?? [];
  return results.map((x) => `${x.kind} ${x.name} ${x.ok ? "ok" : "FAILED"}`);
}

const removedAll = (flow: Flow, slug: string) => [
  `machine ${names.machine(slug)} ok`,
  `container ${names.bundle(slug)} ok`,
  `network ${names.egressNet(slug)} ok`,
  `state dir ${join(flow.stateRoot, "bottles", slug)} ok`,
];

async function until(ok: () => boolean, timeoutMs: number, why: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms\n${why()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
