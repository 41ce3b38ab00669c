// The firewall as a real host process under an agent's flood of refusals: what reaches its
// log (read slower than it is written, as docker reads the bundle's) and what its record
// keeps, for made-up names, for secrets sent to a wildcard's made-up subdomains, and for
// clients on the machine that lack the agent key.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { BLOCKED_LIMITS, BlockedRecord, CONTENT_KEYS_PER_RULE } from "../../lib/blocked-record.ts";
import { mintCa } from "../../lib/tls/mod.ts";
import { startDaemon } from "../../tests/support/daemon-process.ts";
import { connectTunnel, httpsVia, plainVia } from "../../tests/support/raw-http.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { LINE_RATES } from "./blocked-log.ts";
import { policyOf } from "./test-harness.ts";

const MAIN = new URL("./main.ts", import.meta.url).pathname;
const AWS = "AKIAIOSFODNN7EXAMPLE";
const ca = await mintCa({ commonName: "test bottle CA" });

/** A firewall process for `hosts`, keeping its record in the test's folder. */
async function firewall(t: TestContext, hosts: string[], extra: string[] = [], env: Record<string, string> = {}) {
  const dir = await tempDir(t, "bb-firewall-flood-");
  const file = async (name: string, text: string) => {
    await writeFile(join(dir, name), text);
    return join(dir, name);
  };
  const record = join(dir, "blocked.json");
  const fw = await startDaemon(MAIN, [
    "--listen", "127.0.0.1:0",
    "--policy", await file("policy.json", JSON.stringify(policyOf(hosts))),
    "--ca-cert", await file("ca.pem", ca.certPem),
    "--ca-key", await file("ca-key.pem", ca.keyPem),
    "--blocked-record", record,
    ...extra,
  ], env);
  t.after(() => fw.stop());
  return { fw, record: async () => BlockedRecord.parse(JSON.parse(await readFile(record, "utf8"))) };
}

/** A secret sent over real TLS to an allowed host: refused inside the tunnel. */
async function secretTo(port: number, host: string): Promise<void> {
  const c = await httpsVia(port, host, ca.certPem);
  const res = await c.request("GET", `/?k=${AWS}`, { host });
  c.socket.destroy();
  assert.equal(res.status, 403, res.body);
}

test("a flood of made-up names read slowly from the log: each name's first refusal (up to a bound) and counts of the rest reach it, nothing is left out, and a secret sent after the flood is logged", async (t) => {
  const { fw } = await firewall(t, ["api.example.test"]);
  // Nobody reads the log for now: the pipe fills and the daemon's own queue grows.
  fw.child.stderr!.pause();
  const first = await connectTunnel(fw.port, "first.exfil.test:443");
  assert.ok("refused" in first && first.refused.status === 403);
  const long = (i: number) => `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(40)}-${i}.flood.test`;
  const FLOOD = 6000;
  const c = await plainVia(fw.port);
  for (let i = 0; i < FLOOD; i++) {
    assert.equal((await c.proxyRequest("GET", `http://${long(i)}/`)).status, 403);
    if (i % 100 === 99) assert.equal((await c.proxyRequest("GET", "http://first.exfil.test/again")).status, 403);
  }
  c.socket.destroy();
  await secretTo(fw.port, "api.example.test");
  fw.child.stderr!.resume();
  await fw.waitForLog(/api\.example\.test/, 20_000).catch(() => {});
  await fw.stop(); // SIGTERM: counts still pending are said on the way out

  const log = fw.stderr();
  const lines = log.split("\n");
  assert.doesNotMatch(log, /left out/);
  assert.match(log, /blocked CONNECT first\.exfil\.test: host is not in this bottle's allowlist/);
  assert.match(log, /blocked GET api\.example\.test: detector aws matched/, "the secret sent after the flood was left out of the log");
  assert.ok(log.length < 256 * 1024, `the flood wrote ${log.length} bytes of log`);
  const firsts = lines.filter((l) => /blocked GET a{63}\..*-\d+\.flood\.test: host is not/.test(l)).length;
  assert.ok(firsts >= LINE_RATES.gate.burst, `only ${firsts} of the flood's names were logged one by one`);
  // Each refusal is in the log once: a line of its own, or counted in a line that says so.
  const sum = (re: RegExp) => lines.map((l) => re.exec(l)?.[1]).filter(Boolean).reduce((a, n) => a + Number(n), 0);
  assert.equal(sum(/^firewall: warning: blocked first\.exfil\.test \(not allowed\): (\d+) more like it in the last \d+ s$/), FLOOD / 100);
  const counted = sum(/^firewall: warning: blocked \d+ more refusals? in the last \d+ s, not logged one by one \(.*?(\d+) to hosts or ports not allowed\)/);
  assert.equal(firsts + counted, FLOOD, lines.filter((l) => /more/.test(l)).join("\n"));
});

test("secrets sent to made-up subdomains of one wildcard take a bounded share of the record: a secret to another allowed host after them is listed", async (t) => {
  const { fw, record } = await firewall(t, ["*.wild.test", "api.example.test"]);
  const c = await plainVia(fw.port);
  const N = BLOCKED_LIMITS.content + 20;
  for (let i = 0; i < N; i++) assert.equal((await c.proxyRequest("GET", `http://x${i}.wild.test/?k=${AWS}`)).status, 403);
  c.socket.destroy();
  await secretTo(fw.port, "api.example.test");
  await fw.stop();

  const r = await record();
  const wild = r.entries.filter((e) => e.host.endsWith(".wild.test"));
  assert.equal(wild.length, CONTENT_KEYS_PER_RULE);
  assert.ok(wild.every((e) => e.rule === "dlp aws" && e.under === "*.wild.test"));
  assert.deepEqual(r.entries.filter((e) => e.host === "api.example.test").map((e) => [e.rule, e.count, e.under]), [["dlp aws", 1, "api.example.test"]]);
  assert.equal(r.others.count, N - CONTENT_KEYS_PER_RULE);
});

test("secrets sent to made-up subdomains of ten wildcards fill the record's content keys: a secret under an eleventh allowlist entry after them is still listed", async (t) => {
  const wilds = Array.from({ length: 11 }, (_, w) => `*.w${w}.test`);
  const { fw, record } = await firewall(t, [...wilds, "api.example.test"]);
  const c = await plainVia(fw.port);
  const flooded = BLOCKED_LIMITS.content / CONTENT_KEYS_PER_RULE;
  for (let w = 0; w < flooded; w++) {
    for (let i = 0; i < CONTENT_KEYS_PER_RULE + 5; i++) assert.equal((await c.proxyRequest("GET", `http://x${i}.w${w}.test/?k=${AWS}`)).status, 403);
  }
  c.socket.destroy();
  await secretTo(fw.port, "late.w10.test");
  await secretTo(fw.port, "api.example.test");
  await fw.stop();

  const r = await record();
  const content = r.entries.filter((e) => e.rule === "dlp aws");
  assert.deepEqual(content.filter((e) => e.under === "*.w10.test" || e.under === "api.example.test").map((e) => [e.host, e.count]), [["late.w10.test", 1], ["api.example.test", 1]]);
  assert.equal(content.length, BLOCKED_LIMITS.content + 2);
  assert.equal(r.others.count, flooded * 5);
});

test("a client without the agent key is refused 407, logged with what it asked for and recorded apart, within a budget of its own", async (t) => {
  const key = "0123456789abcdef".repeat(3);
  const { fw, record } = await firewall(t, ["api.example.test"], ["--require-agent-key"], { BB_AGENT_KEY: key });
  for (let i = 0; i < 3; i++) {
    const k = await connectTunnel(fw.port, "knock.test:443");
    assert.ok("refused" in k && k.refused.status === 407);
  }
  const knock = async (url: string) => {
    const p = await plainVia(fw.port); // a 407 closes its connection
    assert.equal((await p.proxyRequest("GET", url)).status, 407);
    p.socket.destroy();
  };
  await knock("http://api.example.test/");
  // A knocker making up names fills its own budget, never the agent's.
  for (let i = 0; i < BLOCKED_LIMITS.keyless + 5; i++) await knock(`http://k${i}.knock.test/`);
  const auth = { "Proxy-Authorization": `Basic ${Buffer.from(`bb:${key}`).toString("base64")}` };
  const agent = await connectTunnel(fw.port, "evil.test:443", auth);
  assert.ok("refused" in agent && agent.refused.status === 403);
  await fw.stop();

  const log = fw.stderr();
  assert.match(log, /blocked CONNECT knock\.test: no agent key \(407\) from 127\.0\.0\.1/);
  assert.match(log, /knock\.test \(no agent key\): 2 more like it in the last \d+ s/);
  assert.match(log, /blocked GET api\.example\.test: no agent key \(407\)/);
  assert.ok(!log.includes(key));
  const r = await record();
  const keyless = r.entries.filter((e) => e.rule === "no agent key");
  assert.equal(keyless.length, BLOCKED_LIMITS.keyless);
  assert.deepEqual(keyless.slice(0, 2).map((e) => [e.host, e.count]), [["knock.test", 3], ["api.example.test", 1]]);
  assert.deepEqual(r.entries.filter((e) => e.rule !== "no agent key").map((e) => [e.host, e.rule]), [["evil.test", "not allowed"]]);
  assert.equal(r.others.count, 7);
});
