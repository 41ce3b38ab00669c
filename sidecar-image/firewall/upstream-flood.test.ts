// An allowed host that is down, under an agent's loop of requests to it: the firewall and
// egress as real host processes on loopback, the host's address a closed loopback port.
// Each failure had a line of its own in both daemons' logs (one per request in egress, one
// per passthrough CONNECT in the firewall); now the first of each, then counts.
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { test, type TestContext } from "node:test";
import { mintCa } from "../../lib/tls/mod.ts";
import { type DaemonProcess, startDaemon } from "../../tests/support/daemon-process.ts";
import { connectTunnel, plainVia } from "../../tests/support/raw-http.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { until } from "../../tests/support/until.ts";
import { policyOf, startFirewallProcess } from "./test-harness.ts";

const EGRESS = new URL("../egress/main.ts", import.meta.url).pathname;
const ca = await mintCa({ commonName: "test bottle CA" });
const FLOOD = 2000;

/** Until `re` is in the daemon's log so far (its line may come after the answer that
 * prompted it; waitForLog would look only at lines still to come). */
const logged = (d: DaemonProcess, re: RegExp) => until(`${re} in the log`, () => re.test(d.stderr()), { why: () => d.stderr().slice(-2000) });

/** A loopback port nobody listens on: it was ours a moment ago. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function firewall(t: TestContext, hosts: Parameters<typeof policyOf>[0], extra: string[]): Promise<DaemonProcess & { policy: string }> {
  const fw = await startFirewallProcess(await tempDir(t, "bb-upstream-flood-"), hosts, ca, extra);
  t.after(() => fw.stop());
  return fw;
}

/** The failures a log accounts for with `first`: its lines, plus what its count lines say. */
function accounted(log: string, first: RegExp): number {
  const lines = log.split("\n").filter((l) => first.test(l));
  return lines.reduce((n, l) => n + Number(/ \((\d+) more like it in the last \d+ s\)$/.exec(l)?.[1] ?? 1), 0);
}

test("an agent looping requests to an allowed host that is down: egress and the firewall each log its first failure, then counts, and the policy's reload answer still comes", async (t) => {
  const down = await closedPort();
  const egress = await startDaemon(EGRESS, ["--listen", "127.0.0.1:0", "--resolve", `down.test=127.0.0.1:${down}`, "--resolve", `pass.test=127.0.0.1:${down}`]);
  t.after(() => egress.stop());
  const fw = await firewall(t, ["down.test", { host: "pass.test", tlsPassthrough: true }], ["--next-hop", `127.0.0.1:${egress.port}`]);

  const c = await plainVia(fw.port);
  for (let i = 0; i < FLOOD; i++) assert.equal((await c.proxyRequest("GET", `http://down.test/${i}`)).status, 502);
  c.socket.destroy();
  for (let i = 0; i < FLOOD; i++) {
    const r = await connectTunnel(fw.port, "pass.test:443");
    assert.ok("refused" in r && r.refused.status === 502);
  }
  fw.signal("SIGHUP");
  await fw.waitForLog(/policy reloaded from /);
  await fw.stop(); // SIGTERM: counts still pending are said on the way out
  await egress.stop();

  const fwLog = fw.stderr();
  const egLog = egress.stderr();
  assert.ok(egLog.length < 4096, `egress wrote ${egLog.length} bytes of log:\n${egLog.slice(0, 1000)}`);
  assert.ok(fwLog.length < 4096, `the firewall wrote ${fwLog.length} bytes of log:\n${fwLog.slice(0, 1000)}`);
  // Each failure is in the log once: the first line of its kind, or counted in a later one.
  assert.equal(accounted(egLog, /^egress: warning: cannot reach upstream http:\/\/down\.test: ECONNREFUSED/), FLOOD, egLog);
  assert.equal(accounted(egLog, /^egress: warning: cannot reach upstream pass\.test:443: ECONNREFUSED/), FLOOD, egLog);
  assert.equal(accounted(fwLog, /^firewall: warning: tunnel to pass\.test:443 failed: next hop refused CONNECT pass\.test:443/), FLOOD, fwLog);
  assert.doesNotMatch(fwLog + egLog, /left out|not logged/);
});

test("a firewall dialing upstreams itself logs an allowed host that is down once, then counts; another host's failure after the flood is logged at once", async (t) => {
  const down = await closedPort();
  const fw = await firewall(t, ["down.test", "other.test"], ["--resolve", `down.test=127.0.0.1:${down}`, "--resolve", `other.test=127.0.0.1:${down}`]);
  const c = await plainVia(fw.port);
  for (let i = 0; i < FLOOD; i++) assert.equal((await c.proxyRequest("GET", `http://down.test/${i}`)).status, 502);
  assert.equal((await c.proxyRequest("GET", "http://other.test/")).status, 502);
  c.socket.destroy();
  await fw.waitForLog(/upstream other\.test: /, 5000).catch(() => {});
  await fw.stop();

  const log = fw.stderr();
  assert.ok(log.length < 2048, `the firewall wrote ${log.length} bytes of log:\n${log.slice(0, 1000)}`);
  assert.equal(accounted(log, /^firewall: warning: upstream down\.test: connect ECONNREFUSED/), FLOOD, log);
  assert.match(log, /^firewall: warning: upstream other\.test: connect ECONNREFUSED/m);
});

// Made-up subdomains of one allowed wildcard, each failing in its own words (each name is
// in its line): they must not use up the lines another allowed host's failure needs.
const MADE_UP = 300;
const madeUp = (i: number) => `h${i}.x.test`;
const resolveAll = (port: number, names: string[]) => names.flatMap((n) => ["--resolve", `${n}=127.0.0.1:${port}`]);
const names = Array.from({ length: MADE_UP }, (_, i) => madeUp(i));

test("a flood of made-up subdomains of one allowed wildcard, each failing in egress: another allowed host's failure after it still gets its own line in egress's log", async (t) => {
  const down = await closedPort();
  const egress = await startDaemon(EGRESS, ["--listen", "127.0.0.1:0", ...resolveAll(down, [...names, "other.test"])]);
  t.after(() => egress.stop());
  const fw = await firewall(t, ["*.x.test", "other.test"], ["--next-hop", `127.0.0.1:${egress.port}`]);
  const c = await plainVia(fw.port);
  for (const n of names) assert.equal((await c.proxyRequest("GET", `http://${n}/`)).status, 502);
  assert.equal((await c.proxyRequest("GET", "http://other.test/")).status, 502);
  c.socket.destroy();
  await logged(egress, /other\.test/);
  await egress.stop();

  const log = egress.stderr();
  assert.match(log, /^egress: warning: cannot reach upstream http:\/\/other\.test: ECONNREFUSED/m, log.slice(-2000));
  const firsts = log.split("\n").filter((l) => /^egress: warning: cannot reach upstream http:\/\/h\d+\.x\.test: ECONNREFUSED/.test(l)).length;
  assert.ok(firsts >= 5, `only ${firsts} of the wildcard's failures had lines of their own`);
  assert.ok(log.length < 16 * 1024, `egress wrote ${log.length} bytes of log`);
});

test("a flood of made-up subdomains of one allowed wildcard, each failing in the firewall (dialing directly, passthrough and intercepted): another allowed host's failures still get their own lines", async (t) => {
  const down = await closedPort();
  const pass = names.map((n) => n.replace(".x.", ".p."));
  const fw = await firewall(t, ["*.x.test", "other.test", { host: "*.p.test", tlsPassthrough: true }, { host: "pass.test", tlsPassthrough: true }], resolveAll(down, [...names, ...pass, "other.test", "pass.test"]));
  const c = await plainVia(fw.port);
  for (const n of names) assert.equal((await c.proxyRequest("GET", `http://${n}/`)).status, 502);
  assert.equal((await c.proxyRequest("GET", "http://other.test/")).status, 502);
  c.socket.destroy();
  for (const n of pass) {
    const r = await connectTunnel(fw.port, `${n}:443`);
    assert.ok("refused" in r && r.refused.status === 502);
  }
  const r = await connectTunnel(fw.port, "pass.test:443");
  assert.ok("refused" in r && r.refused.status === 502);
  await logged(fw, /tunnel to pass\.test:443/);
  await fw.stop();

  const log = fw.stderr();
  assert.match(log, /^firewall: warning: upstream other\.test: connect ECONNREFUSED/m, log.slice(-2000));
  assert.match(log, /^firewall: warning: tunnel to pass\.test:443 failed: connect ECONNREFUSED/m, log.slice(-2000));
  assert.ok(log.length < 16 * 1024, `the firewall wrote ${log.length} bytes of log`);
});

// egress cannot know the allowlist entry, so it shares by registrable domain: under a
// public suffix of two labels (github.io, co.uk) the last two labels would be every
// registrant's, and one site's made-up subdomains would silence all its neighbours. The
// names never leave this machine: --resolve sends each to the closed loopback port.
test("a flood of made-up subdomains of one site under a two-label public suffix, each failing in egress: another site under the same suffix still gets its own line", async (t) => {
  const down = await closedPort();
  const flood = [...names.map((n) => n.replace(".x.test", ".flood.github.io")), ...names.map((n) => n.replace(".x.test", ".flood.co.uk"))];
  const others = ["neighbour.github.io", "www.neighbour.co.uk"];
  const egress = await startDaemon(EGRESS, ["--listen", "127.0.0.1:0", ...resolveAll(down, [...flood, ...others])]);
  t.after(() => egress.stop());
  const c = await plainVia(egress.port);
  for (const n of flood) assert.equal((await c.proxyRequest("GET", `http://${n}/`)).status, 502);
  for (const n of others) assert.equal((await c.proxyRequest("GET", `http://${n}/`)).status, 502);
  c.socket.destroy();
  await logged(egress, /neighbour\.co\.uk/);
  await egress.stop();

  const log = egress.stderr();
  for (const n of others) assert.match(log, new RegExp(`^egress: warning: cannot reach upstream http://${n.replaceAll(".", "\\.")}: ECONNREFUSED`, "m"), log.slice(-2000));
  const firsts = log.split("\n").filter((l) => /^egress: warning: cannot reach upstream http:\/\/h\d+\.flood\./.test(l)).length;
  assert.ok(firsts >= 10, `only ${firsts} of the floods' failures had lines of their own`);
  assert.ok(log.length < 16 * 1024, `egress wrote ${log.length} bytes of log`);
});

/** A POST whose body never comes whole: after the firewall's 100 Continue the agent hangs
 * up, and the firewall's reading of the body fails ("request to HOST failed: aborted"). */
async function abandonedPost(port: number, host: string): Promise<void> {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  s.write(`POST http://${host}/ HTTP/1.1\r\nhost: ${host}\r\nexpect: 100-continue\r\ncontent-length: 100\r\n\r\n`);
  const [answer] = await once(s, "data");
  assert.match(String(answer), /^HTTP\/1\.1 100 /);
  s.end("part of it");
  s.destroy();
  await once(s, "close");
}

test("a flood of requests under one allowed wildcard that fail in the firewall itself: another allowed host's failure after it still gets its own line", async (t) => {
  const fw = await firewall(t, ["*.x.test", "other.test"], []);
  for (const n of names) await abandonedPost(fw.port, n);
  await abandonedPost(fw.port, "other.test");
  await logged(fw, /request to other\.test failed/);
  await fw.stop();

  const log = fw.stderr();
  assert.match(log, /^firewall: error: request to other\.test failed: aborted/m, log.slice(-2000));
  const firsts = log.split("\n").filter((l) => /^firewall: error: request to h\d+\.x\.test failed: aborted/.test(l)).length;
  assert.ok(firsts >= 5, `only ${firsts} of the wildcard's failures had lines of their own`);
  assert.ok(log.length < 16 * 1024, `the firewall wrote ${log.length} bytes of log`);
});
