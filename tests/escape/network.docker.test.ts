// Escape suite, network confinement (issue 4, properties 1-5), against a real Docker
// engine: bottle A (agent started with `bb-vm --dns` at two recording resolvers) and
// bottle B, both built by the real tools, and the fake internet attached to A's egress
// network. Every "cannot" is paired with a control that reaches the same target from an
// ordinary network, so each test fails if the target was simply down.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import * as docker from "../../lib/docker/index.ts";
import { ANY_EXIT, run } from "../../lib/proc.ts";
import { BUNDLE_MEMORY_MIB, PIDS_LIMIT } from "../../lib/docker/container.ts";
import { AGENT_MEMORY_MIB } from "../../lib/vm/limits.ts";
import { removeAll, startBottle, type Bottle } from "./support/bottle.ts";
import { newId } from "./support/env.ts";
import { startFakeInternet, startHostResolver, type FakeInternet, type HostResolver } from "./support/fake-internet.ts";
import { control, gatewayOf, hostListener, parallel, tcpProbe } from "./support/net.ts";

/** node -e: connect to argv[1]:argv[2], send argv[3] (base64: a pkt-line holds NULs),
 * print {connected, reply} once the peer closes or 3 s pass. */
const EXCHANGE = `const [host, port, b64] = process.argv.slice(1);
const text = Buffer.from(b64, "base64");
let connected = false, reply = "";
const done = () => { console.log(JSON.stringify({ connected, reply })); process.exit(0); };
const s = require("net").connect(Number(port), host, () => { connected = true; s.write(text); });
s.on("data", (d) => (reply += d)).on("close", done).on("error", () => {});
setTimeout(done, 3000);`;

const b64 = (text: string) => Buffer.from(text).toString("base64");

/** A git pkt-line: four hex digits of length, then the payload. */
const pktLine = (payload: string) => (payload.length + 4).toString(16).padStart(4, "0") + payload;

const opened = (output: string) => output.split("\n").filter((l) => l.startsWith("open "));

async function ipOn(container: string, network: string): Promise<string> {
  const ip = (await docker.inspectContainer(container))?.networks[network]?.ipAddress;
  assert.ok(ip, `${container} has no address on ${network}`);
  return ip;
}

describe("escape suite: network confinement (docker)", () => {
  const id = newId();
  let state: string;
  let fake: FakeInternet | undefined;
  let hostDns: HostResolver | undefined;
  let a: Bottle | undefined;
  let b: Bottle | undefined;
  let fakeEgressIp = "";
  let bridgeGateway = "";

  before(async () => {
    state = await mkdtemp(join(tmpdir(), "bb-escape-net-"));
    bridgeGateway = await gatewayOf("bridge");
    // Each result is kept as soon as it exists, so `after` removes it even if its sibling fails.
    await Promise.all([startFakeInternet(id).then((x) => (fake = x)), startHostResolver(id, bridgeGateway).then((x) => (hostDns = x))]);
    const f = fake!;
    await Promise.all([
      startBottle({
        stateRoot: state,
        upstreamCa: f.caFile,
        afterBundle: async ({ egressNet }) => void (fakeEgressIp = await f.attach(egressNet)),
        // A resolver on this machine's own address first, then one on the egress network.
        dns: () => [bridgeGateway, fakeEgressIp],
      }).then((x) => (a = x)),
      // B declares limits (its bottle extends A's), which the limits test reads back.
      startBottle({ stateRoot: state, agent: "limited" }).then((x) => (b = x)),
    ]);
  });

  after(async () => {
    await hostDns?.remove();
    await fake?.removeContainer();
    await removeAll([a, b]);
    await fake?.removeRest();
    await rm(state, { recursive: true, force: true });
  });

  it("the agent cannot reach the fake upstream directly: not by name with the proxy off, not by any of its addresses", async () => {
    const before = (await fake!.events()).length;
    const ownIp = await fake!.ipOn(fake!.network);
    const byName = ["api.test", "allowed.test", "passthrough.test", "git.test"].map(
      (h) => `curl --noproxy '*' -sS -m 5 -o /dev/null https://${h}/ 2>/dev/null && echo "open https://${h}" || echo "closed https://${h}"`,
    );
    const byIp = [fakeEgressIp, ownIp].flatMap((ip) => [
      `curl --noproxy '*' -k -sS -m 5 -o /dev/null https://${ip}/ 2>/dev/null && echo "open https://${ip}" || echo "closed https://${ip}"`,
      tcpProbe(ip, 80),
      tcpProbe(ip, 9418),
      tcpProbe(ip, 53),
    ]);
    const r = await a!.sh(parallel([...byName, ...byIp]));
    assert.equal(r.stdout.split("\n").filter((l) => l.startsWith("closed ")).length, byName.length + byIp.length, r.stdout + r.stderr);
    assert.deepEqual(opened(r.stdout), []);
    await sleep(500);
    assert.deepEqual((await fake!.events()).slice(before), [], "the fake upstream saw something from the agent");

    // Control: from an ordinary container on the same egress network the fake answers by name.
    const c = await control({ network: a!.egressNet, script: "curl -k -sS -m 5 -o /dev/null -w '%{http_code}' https://api.test/control" });
    assert.equal(c.stdout, "200", c.stderr);
    assert.ok((await fake!.events()).some((e) => e.kind === "http" && e.path === "/control"));
  });

  it("the agent cannot reach this machine: a host listener is unreachable at the bottle's and docker's gateways", async () => {
    const listener = await hostListener();
    try {
      const gateways = [await gatewayOf(a!.internalNet), await gatewayOf(a!.egressNet), bridgeGateway];
      const r = await a!.sh(parallel(gateways.map((gw) => tcpProbe(gw, listener.port))));
      assert.deepEqual(opened(r.stdout), [], r.stdout);
      assert.deepEqual(listener.hits, []);

      // Control: the same listener answers containers on ordinary networks.
      const own = await control({ network: fake!.network, script: tcpProbe(await gatewayOf(fake!.network), listener.port) });
      const bridge = await control({ network: "bridge", script: tcpProbe(bridgeGateway, listener.port) });
      assert.match(own.stdout, /^open /, own.stdout + own.stderr);
      assert.match(bridge.stdout, /^open /, bridge.stdout + bridge.stderr);
      assert.equal(listener.hits.length, 2);
    } finally {
      await listener.close();
    }
  });

  it("the agent cannot reach another bottle: not bundle B or agent B, on any of B's networks, while its own bundle answers", async () => {
    // Agent B listens on 7000 so there is something to reach.
    await docker.execIn(b!.agent, ["sh", "-c", `nohup node -e 'require("net").createServer((s) => s.end("b\\n")).listen(7000)' >/dev/null 2>&1 &`], { user: "node" });
    const bundleB = [await ipOn(b!.bundle, b!.internalNet), await ipOn(b!.bundle, b!.egressNet)];
    const agentB = await ipOn(b!.agent, b!.internalNet);
    const targets = [...bundleB.flatMap((ip) => [8888, 9418, 9100].map((p) => [ip, p] as const)), [agentB, 7000] as const];

    // Control first: inside bottle B the same addresses answer (retried while node starts).
    let inB = "";
    for (let i = 0; i < 20 && opened(inB).length < 2; i++) {
      if (i) await sleep(250);
      inB = (await b!.sh(parallel([tcpProbe(bundleB[0]!, 8888), tcpProbe(agentB, 7000)]))).stdout;
    }
    assert.equal(opened(inB).length, 2, inB);

    const r = await a!.sh(parallel(targets.map(([ip, p]) => tcpProbe(ip, p))));
    assert.deepEqual(opened(r.stdout), [], r.stdout);
    assert.equal(r.stdout.trim().split("\n").length, targets.length);
    const own = await a!.sh([tcpProbe("firewall", 8888), tcpProbe("git-gate", 9418), tcpProbe("supervise", 9100)].join("\n"));
    assert.equal(opened(own.stdout).length, 3, own.stdout);
  });

  it("the agent cannot reach egress: port 9099 of its bundle is closed by alias and by address, though egress runs", async () => {
    const bundleIp = await ipOn(a!.bundle, a!.internalNet);
    const bundleEgressIp = await ipOn(a!.bundle, a!.egressNet);
    const targets = ["firewall", "git-gate", "supervise", bundleIp, bundleEgressIp].map((h) => tcpProbe(h, 9099));
    // The bundle's egress-side address is no way in either, not even to the agent-facing ports.
    targets.push(tcpProbe(bundleEgressIp, 8888), tcpProbe(bundleEgressIp, 9418));
    const r = await a!.sh(parallel(targets));
    assert.deepEqual(opened(r.stdout), [], r.stdout);
    assert.equal(r.stdout.trim().split("\n").length, targets.length);
    // Control: egress answers on the bundle's loopback.
    const inside = await docker.execIn(a!.bundle, ["node", "-e", `require("net").connect(9099, "127.0.0.1").on("connect", () => { console.log("open"); process.exit(0); }).on("error", (e) => { console.log(e.code); process.exit(1); })`], { expect: [0, 1] });
    assert.equal(inside.stdout.trim(), "open");
  });

  it("nothing on this machine but the agent uses the bundle: at its egress-network address each agent-facing port takes a connection and closes it unanswered", async () => {
    const egressIp = await ipOn(a!.bundle, a!.egressNet);
    const hello: [number, string][] = [
      [8888, "CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n"],
      [9418, pktLine("git-upload-pack /git.test/team/app\0host=git-gate\0")],
      [9100, "GET /mcp HTTP/1.1\r\nHost: supervise\r\n\r\n"],
    ];
    // From this machine, as any local user's process would (the egress network is a plain
    // bridge, reachable through its gateway).
    for (const [port, text] of hello) {
      const r = await run(["node", "-e", EXCHANGE, egressIp, String(port), b64(text)]);
      const got = JSON.parse(r.stdout) as { connected: boolean; reply: string };
      assert.ok(got.connected, `${egressIp}:${port} took no connection, so its refusal proves nothing`);
      assert.equal(got.reply, "", `${egressIp}:${port} answered this machine`);
    }
    // Control: the agent, on the internal network, is answered on the same ports.
    for (const [port, text] of hello) {
      const host = { 8888: "firewall", 9418: "git-gate", 9100: "supervise" }[port]!;
      const got = JSON.parse((await a!.exec(["node", "-e", EXCHANGE, host, String(port), b64(text)])).stdout) as { connected: boolean; reply: string };
      assert.notEqual(got.reply, "", `control: ${host}:${port} answered the agent nothing`);
    }
    const logs = await run(["docker", "logs", a!.bundle]);
    assert.match(logs.stdout + logs.stderr, /refused a connection from \S+ on the egress network's side/);
  });

  it("each daemon runs under its own uid with no capability; none can read another's environment; root in the agent has no raw sockets", async () => {
    const r = await docker.execIn(a!.bundle, ["sh", "-c",
      'for p in /proc/[0-9]*; do c=$(tr "\\0" " " < $p/cmdline 2>/dev/null); case "$c" in "node /opt/bb/sidecar/"*) echo "${p#/proc/}|$(stat -c %u $p)|$c|$(grep -E "^(CapEff|CapBnd|NoNewPrivs):" $p/status | tr -s "\\t\\n" "  ")";; esac; done']);
    const procs = r.stdout.split("\n").filter(Boolean).map((l) => {
      const [pid, uid, cmd, status] = l.split("|");
      return { pid: pid!, uid: uid!, name: /sidecar\/([a-z-]+)\.js/.exec(cmd!)![1]!, status: status! };
    });
    const daemons = procs.filter((p) => p.name !== "init");
    assert.ok(daemons.length >= 3, `expected firewall, egress and supervise at least:\n${r.stdout}`);
    assert.equal(new Set(daemons.map((d) => d.uid)).size, daemons.length, `daemons share a uid:\n${r.stdout}`);
    for (const d of daemons) assert.match(d.status, /CapEff: 0+ CapBnd: 0+ NoNewPrivs: 1/, `${d.name}: ${d.status}`);
    // init keeps exactly what it takes to start and signal them: SETUID, SETGID, SETPCAP, KILL.
    const init = procs.find((p) => p.name === "init");
    assert.match(init?.status ?? "", /CapEff: 0+1e0 .*NoNewPrivs: 1/, `init: ${init?.status}`);
    for (const reader of daemons) {
      for (const target of [...daemons.filter((d) => d !== reader), init!]) {
        const read = await docker.execIn(a!.bundle, ["cat", `/proc/${target.pid}/environ`], { user: reader.uid, expect: ANY_EXIT });
        assert.notEqual(read.code, 0, `${reader.name}'s uid read ${target.name}'s environment`);
      }
    }
    const own = await docker.execIn(a!.bundle, ["cat", `/proc/${daemons[0]!.pid}/environ`], { user: daemons[0]!.uid, expect: ANY_EXIT });
    assert.equal(own.code, 0, "control: a daemon's own uid reads its environment");

    // Root in the agent (bb-provision's way in) keeps chown but not NET_RAW (bit 13).
    const caps = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec((await a!.sh("grep CapEff /proc/self/status", { root: true })).stdout)![1]}`);
    assert.equal(caps & (1n << 13n), 0n, "CAP_NET_RAW is held by root in the agent");
    assert.notEqual(caps & 1n, 0n, "control: root in the agent keeps CAP_CHOWN");
  });

  it("the agent and the bundle each have a process limit, so a fork bomb cannot exhaust the machine's process table", async () => {
    const pidsMax = "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max";
    assert.equal((await a!.sh(pidsMax)).stdout.trim(), String(PIDS_LIMIT.agent));
    assert.equal((await docker.execIn(a!.bundle, ["sh", "-c", pidsMax])).stdout.trim(), String(PIDS_LIMIT.bundle));
  });

  it("the agent and the bundle each have a memory limit (the default, or the bottle's) and a declared CPU limit holds", async () => {
    // cgroup v2 names one file, v1 another; "max" is v2's "no limit".
    const memoryMax = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes";
    const mib = (out: string) => Number(out.trim()) / 2 ** 20;
    assert.equal(mib((await a!.sh(memoryMax)).stdout), AGENT_MEMORY_MIB, "A declares no limits: the default");
    assert.equal(mib((await docker.execIn(a!.bundle, ["sh", "-c", memoryMax])).stdout), BUNDLE_MEMORY_MIB);
    assert.equal(mib((await b!.sh(memoryMax)).stdout), 1024, "B's bottle declares memory: 1g");
    // 0.5 CPU: half of each period. v2 writes "quota period" in one file, v1 two files.
    const cpuMax = "cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)";
    const [quota, period] = (await b!.sh(cpuMax)).stdout.trim().split(/\s+/).map(Number);
    assert.equal(quota! / period!, 0.5, "B's bottle declares cpus: 0.5");
    assert.match((await a!.sh(cpuMax)).stdout, /^(max|-1) /, "A declares no cpus: no quota");
  });

  it("the agent cannot resolve outside names, and no resolver ever sees its query", async () => {
    const leak = `leak-${newId()}.test`;
    // ahostsv4: one query type, so the resolver's retries (5 s x 2) are not doubled for AAAA.
    const r = await a!.sh(parallel([leak, "api.test"].map((n) => `getent ahostsv4 ${n}; echo "${n} rc=$?"`)));
    assert.match(r.stdout, new RegExp(`^${leak} rc=[1-9]`, "m"), r.stdout);
    assert.match(r.stdout, /^api\.test rc=[1-9]/m, r.stdout);
    await sleep(500);
    const seenByFake = (await fake!.events()).flatMap((e) => (e.kind === "dns" ? [e.name] : []));
    assert.ok(!seenByFake.some((n) => n.includes("leak-") || n === "api.test"), `the egress resolver saw ${seenByFake.join(", ")}`);
    const seenByHost = await hostDns!.names();
    assert.ok(!seenByHost.some((n) => n.includes("leak-") || n === "api.test"), `the host resolver saw ${seenByHost.join(", ")}`);

    // Control: the same resolvers record a query from containers on ordinary networks.
    const viaEgress = `control-${newId()}.test`;
    const viaHost = `control-${newId()}.test`;
    await control({ network: a!.egressNet, dns: [fakeEgressIp], script: `getent hosts ${viaEgress}` });
    await control({ network: "bridge", dns: [bridgeGateway], script: `getent hosts ${viaHost}` });
    assert.ok((await fake!.events()).some((e) => e.kind === "dns" && e.name === viaEgress));
    assert.ok((await hostDns!.names()).includes(viaHost));
  });
});
