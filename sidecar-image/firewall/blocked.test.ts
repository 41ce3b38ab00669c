// The firewall's record of refusals: the summary's rules and bounds in-process, then the
// firewall as a real host process flooded with refusals of distinct long hosts (what an
// agent does to push its first attempts out of the rotated bundle log).
import assert from "node:assert/strict";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { BLOCKED_LIMITS, BlockedRecord, CONTENT_FIRST_KEYS, CONTENT_KEYS_PER_RULE } from "../../lib/blocked-record.ts";
import { createLogger } from "../../lib/log.ts";
import { mintCa } from "../../lib/tls/mod.ts";
import { startDaemon } from "../../tests/support/daemon-process.ts";
import { connectTunnel, plainVia } from "../../tests/support/raw-http.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { until } from "../../tests/support/until.ts";
import { createBlockedSummary, openBlockedRecord, ruleOf } from "./blocked.ts";
import { policyOf } from "./test-harness.ts";

const MAIN = new URL("./main.ts", import.meta.url).pathname;

test("ruleOf() names the firewall's rule in its own words, never the agent's", () => {
  const cases: [string, string, string][] = [
    ["CONNECT", "host is not in this bottle's allowlist", "not allowed"],
    ["GET", "port 8080 is not allowed for api.test (allowed: 443; a bottle lists others in allow_hosts ports)", "port 8080 not allowed"],
    ["POST", "detector aws matched in body (AWS access key: AKIA…)", "dlp aws"],
    ["POST", "request body is over 16 MiB, too large to scan", "too large to scan"],
    ["websocket", "message in more than 1024 fragments", "too large to scan"],
    ["passthrough tunnel", "its TLS names another server", "passthrough tls"],
    ["websocket", "client frame is not masked", "websocket"],
    ["GET", 'upgrade to "\u001b[2Jh2c" is refused: only WebSocket traffic can be scanned', "upgrade"],
    ["POST", 'request body has charset "\u001b]0;x", which the firewall cannot read, so it cannot be scanned', "cannot scan"],
    ["CONNECT", "no agent key (407) from 127.0.0.1: this proxy serves only its bottle's agent", "no agent key"],
  ];
  for (const [what, reason, rule] of cases) assert.equal(ruleOf({ what, reason }), rule, reason);
});

test("the summary keeps the first keys of each kind for good: later new keys only count in others, known ones keep counting; a flood of names cannot crowd out a DLP finding", () => {
  let t = Date.parse("2026-01-01T00:00:00Z");
  const now = () => new Date((t += 1000));
  const s = createBlockedSummary({ limits: { gate: 3, content: 1 }, now });
  for (const host of ["a.test", "b.test", "a.test", "c.test", "d.test", "e.test", "a.test"]) s.add({ host, what: "CONNECT", reason: "host is not in this bottle's allowlist" });
  s.add({ host: "b.test", what: "GET", reason: "port 81 is not allowed for b.test (allowed: 80, 443; ...)" }); // the gate's, past its limit
  s.add({ host: "api.test", what: "POST", reason: "detector aws matched in body (AWS access key: AKIA…)" }); // kept all the same
  s.add({ host: "api.test", what: "POST", reason: "request body is over 16 MiB, too large to scan" }); // past the content limit
  const r = BlockedRecord.parse(s.snapshot());
  assert.deepEqual(r.entries.map((e) => [e.host, e.rule, e.count]), [["a.test", "not allowed", 3], ["b.test", "not allowed", 1], ["c.test", "not allowed", 1], ["api.test", "dlp aws", 1]]);
  assert.equal(r.entries[0]!.firstSeen, "2026-01-01T00:00:01.000Z");
  assert.equal(r.entries[0]!.lastSeen, "2026-01-01T00:00:07.000Z");
  assert.deepEqual(r.others, { count: 4, firstSeen: "2026-01-01T00:00:05.000Z", lastSeen: "2026-01-01T00:00:10.000Z" });
  assert.deepEqual(r.limits, { gate: 3, content: 1, keyless: BLOCKED_LIMITS.keyless, contentPerRule: CONTENT_KEYS_PER_RULE, contentFirsts: CONTENT_FIRST_KEYS });
  assert.equal(r.entries[0]!.sample, "CONNECT: host is not in this bottle's allowlist");
});

test("content keys are kept per allowlist entry: one wildcard's made-up subdomains cannot take them all, across a restart too; keyless clients have a budget of their own", () => {
  const s = createBlockedSummary({ limits: { content: 6, contentPerRule: 2, keyless: 1 } });
  const secret = (host: string, under?: string) => ({ host, under, what: "POST", reason: "detector aws matched in body (AWS access key: AKIA…)" });
  for (let i = 0; i < 20; i++) s.add(secret(`x${i}.wild.test`, "*.wild.test"));
  s.add(secret("api.test", "api.test"));
  s.add({ host: "api.test", under: "api.test", what: "POST", reason: "request body is over 16 MiB, too large to scan" });
  s.add({ host: "api.test", under: "api.test", what: "POST", reason: "detector jwt matched in body (JWT: eyJ…)" }); // past api.test's two
  s.add(secret("(redacted host name)")); // no entry named: the label is its own
  for (const host of ["knock.test", "other.test"]) s.add({ host, what: "CONNECT", reason: "no agent key (407) from 127.0.0.1: ..." });
  s.add({ host: "evil.test", what: "CONNECT", reason: "host is not in this bottle's allowlist" });
  const r = BlockedRecord.parse(s.snapshot());
  const rows = [["x0.wild.test", "dlp aws", "*.wild.test"], ["x1.wild.test", "dlp aws", "*.wild.test"], ["api.test", "dlp aws", "api.test"], ["api.test", "too large to scan", "api.test"], ["(redacted host name)", "dlp aws", undefined], ["knock.test", "no agent key", undefined], ["evil.test", "not allowed", undefined]];
  assert.deepEqual(r.entries.map((e) => [e.host, e.rule, e.under]), rows);
  assert.equal(r.others.count, 18 + 1 + 1);
  // A restarted firewall counts the entries it finds against their allowlist entries.
  const again = createBlockedSummary({ limits: { content: 6, contentPerRule: 2, keyless: 1 }, from: r });
  again.add(secret("x99.wild.test", "*.wild.test"));
  again.add(secret("new.test", "new.test"));
  assert.deepEqual(again.snapshot().entries.map((e) => e.host).slice(-1), ["new.test"]);
  assert.equal(again.snapshot().others.count, r.others.count + 1);
});

test("once wildcards' made-up subdomains take every content key, the first key of each entry without one is kept, up to a bound, across a restart too", () => {
  const limits = { content: 4, contentPerRule: 2, contentFirsts: 2 };
  const s = createBlockedSummary({ limits });
  const secret = (host: string, under: string) => ({ host, under, what: "POST", reason: "detector aws matched in body (AWS access key: AKIA…)" });
  for (const w of ["a", "b"]) for (let i = 0; i < 5; i++) s.add(secret(`x${i}.${w}.test`, `*.${w}.test`));
  s.add(secret("api.test", "api.test")); // its entry's first: kept past the content keys
  s.add({ host: "api.test", under: "api.test", what: "POST", reason: "request body is over 16 MiB, too large to scan" }); // its second: not
  s.add(secret("late.c.test", "*.c.test"));
  s.add(secret("later.d.test", "*.d.test")); // past the bound
  const r = BlockedRecord.parse(s.snapshot());
  assert.deepEqual(r.entries.map((e) => e.host), ["x0.a.test", "x1.a.test", "x0.b.test", "x1.b.test", "api.test", "late.c.test"]);
  assert.equal(r.others.count, 3 + 3 + 1 + 1);
  const again = createBlockedSummary({ limits, from: r });
  again.add(secret("new.e.test", "*.e.test"));
  assert.deepEqual(again.snapshot().entries.map((e) => e.host), r.entries.map((e) => e.host));
  assert.equal(again.snapshot().others.count, r.others.count + 1);
});

test("the summary cuts the agent's text and makes it printable, and a restarted firewall carries on from its record", () => {
  let t = Date.parse("2026-01-01T00:00:00Z");
  const now = () => new Date((t += 1000));
  const wide = createBlockedSummary({ limits: { gate: 3, content: 1 }, now });
  wide.add({ host: "c.test", what: "POST", reason: `request body has charset "\u001b[31m${"x".repeat(500)}", which...` });
  const sample = wide.snapshot().entries[0]!.sample;
  assert.equal([...sample].length, 200);
  assert.ok(sample.startsWith('POST: request body has charset "\\x1b[31mxxx') && sample.endsWith("…"), sample);

  const full = createBlockedSummary({ limits: { gate: 2, content: 1 }, now });
  for (const host of ["a.test", "b.test", "c.test", "a.test"]) full.add({ host, what: "CONNECT", reason: "host is not in this bottle's allowlist" });
  const r = full.snapshot();
  const again = createBlockedSummary({ limits: { gate: 2, content: 1 }, now, from: r });
  again.add({ host: "a.test", what: "CONNECT", reason: "host is not in this bottle's allowlist" });
  again.add({ host: "z.test", what: "CONNECT", reason: "host is not in this bottle's allowlist" });
  again.add({ host: "api.test", what: "POST", reason: "detector jwt matched in header authorization (JWT: eyJ…)" });
  const r2 = again.snapshot();
  assert.deepEqual(r2.entries.map((e) => [e.host, e.count]), [["a.test", 3], ["b.test", 1], ["api.test", 1]]);
  assert.equal(r2.entries[0]!.firstSeen, r.entries[0]!.firstSeen);
  assert.equal(r2.others.count, 2);
});

test("the recorder writes at most once per interval and on close; a write that fails is said once", async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, "blocked.json");
  const said: string[] = [];
  const log = createLogger({ level: "warn", write: (s) => void said.push(s) });
  const rec = await openBlockedRecord(path, { log, intervalMs: 300 });
  // Claimed empty at once (another daemon could otherwise make it first), then nothing
  // more until the interval passes.
  assert.deepEqual(BlockedRecord.parse(JSON.parse(await readFile(path, "utf8"))).entries, []);
  const entries = async () => BlockedRecord.parse(JSON.parse(await readFile(path, "utf8"))).entries;
  const added = Date.now();
  for (let i = 0; i < 50; i++) rec.add({ host: `h${i}.test`, what: "GET", reason: "host is not in this bottle's allowlist" });
  const early = await entries();
  // Read before the interval could have passed (a loaded machine may take longer to read it,
  // and then the read proves nothing either way).
  if (Date.now() - added < 300) assert.deepEqual(early, [], "written before the interval passed");
  await until("the record written once the interval passed", async () => (await entries()).length === 50, { why: async () => JSON.stringify(await entries()) });
  const first = await stat(path);
  rec.add({ host: "late.test", what: "GET", reason: "host is not in this bottle's allowlist" });
  await rec.close();
  assert.equal(BlockedRecord.parse(JSON.parse(await readFile(path, "utf8"))).entries.length, 51, "close() writes what was pending");
  assert.ok((await stat(path)).mtimeMs >= first.mtimeMs);
  assert.equal((await stat(path)).mode & 0o777, 0o640);
  assert.deepEqual(said, []);

  // A folder that is not there (root would write into a read-only one all the same).
  const stuck = await openBlockedRecord(join(dir, "gone", "blocked.json"), { log, intervalMs: 10 });
  for (let i = 0; i < 3; i++) {
    stuck.add({ host: "x.test", what: "GET", reason: "host is not in this bottle's allowlist" });
    await new Promise((r) => setTimeout(r, 50));
  }
  await stuck.close();
  assert.equal(said.length, 1, said.join(""));
  assert.match(said[0]!, /cannot write the record of refusals .*blocked\.json: .*the log still says the first refusal of each host and rule/);
});

test("a record that cannot be read is said and begun anew", async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, "blocked.json");
  await writeFile(path, "{ not json");
  const said: string[] = [];
  const rec = await openBlockedRecord(path, { log: createLogger({ level: "warn", write: (s) => void said.push(s) }), intervalMs: 10 });
  rec.add({ host: "x.test", what: "GET", reason: "host is not in this bottle's allowlist" });
  await rec.close();
  assert.match(said.join(""), /cannot read the record of refusals .*blocked\.json, starting a new one: .*is not JSON/);
  assert.equal(BlockedRecord.parse(JSON.parse(await readFile(path, "utf8"))).entries[0]!.host, "x.test");
});

test("the firewall process, flooded with refusals of distinct long hosts, keeps the first 400 in its record, counts the rest, still records a DLP finding after them, stays bounded, and carries on after a restart", async (t) => {
  const dir = await tempDir(t, "bb-firewall-blocked-");
  const ca = await mintCa({ commonName: "test bottle CA" });
  const file = async (name: string, text: string) => {
    await writeFile(join(dir, name), text);
    return join(dir, name);
  };
  const record = join(dir, "blocked.json");
  const args = [
    "--listen", "127.0.0.1:0",
    "--policy", await file("policy.json", JSON.stringify(policyOf(["api.example.test"]))),
    "--ca-cert", await file("ca.pem", ca.certPem),
    "--ca-key", await file("ca-key.pem", ca.keyPem),
    "--blocked-record", record,
  ];
  // Names as long as DNS allows (about 250 characters): the log lines that rotate fastest.
  const long = (i: number) => `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(40)}-${i}.flood.test`;
  const FLOOD = BLOCKED_LIMITS.gate + 300;
  const readRecord = async () => BlockedRecord.parse(JSON.parse(await readFile(record, "utf8")));

  const fw = await startDaemon(MAIN, args);
  t.after(() => fw.stop());
  // The first attempts: the ones the flood is meant to erase.
  const first = await connectTunnel(fw.port, "first.exfil.test:443");
  assert.ok("refused" in first && first.refused.status === 403);
  const c = await plainVia(fw.port);
  for (let i = 0; i < FLOOD; i++) assert.equal((await c.proxyRequest("GET", `http://${long(i)}/${"p".repeat(2000)}`)).status, 403);
  assert.equal((await c.proxyRequest("GET", "http://first.exfil.test/again")).status, 403);
  // Then a secret to an allowed host: refused before anything is dialled, and recorded.
  assert.equal((await c.proxyRequest("GET", "http://api.example.test/?k=AKIAIOSFODNN7EXAMPLE")).status, 403);
  c.socket.destroy();
  await fw.stop(); // SIGTERM: the record is written on the way out

  const r = await readRecord();
  assert.equal(r.entries.length, BLOCKED_LIMITS.gate + 1);
  assert.deepEqual(r.entries[0], { ...r.entries[0]!, host: "first.exfil.test", rule: "not allowed", count: 2, sample: "CONNECT: host is not in this bottle's allowlist" });
  assert.deepEqual(r.entries.slice(1, -1).map((e) => e.host), [...Array(BLOCKED_LIMITS.gate - 1).keys()].map(long));
  assert.deepEqual([r.entries.at(-1)!.host, r.entries.at(-1)!.rule], ["api.example.test", "dlp aws"]);
  assert.equal(r.others.count, FLOOD - (BLOCKED_LIMITS.gate - 1));
  const size = (await stat(record)).size;
  assert.ok(size < 512 * 1024, `the record is ${size} bytes`);

  // Restarted (init restarts a firewall that ended): it carries on from the record.
  const again = await startDaemon(MAIN, args);
  t.after(() => again.stop());
  const d = await plainVia(again.port);
  assert.equal((await d.proxyRequest("GET", "http://first.exfil.test/third")).status, 403);
  assert.equal((await d.proxyRequest("GET", "http://after-restart.test/")).status, 403);
  d.socket.destroy();
  // Written within the interval, not only on exit.
  const deadline = Date.now() + 10_000;
  let after = await readRecord();
  while (after.entries[0]!.count !== 3 && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 100));
    after = await readRecord();
  }
  assert.equal(after.entries[0]!.count, 3);
  assert.equal(after.entries[0]!.firstSeen, r.entries[0]!.firstSeen);
  assert.equal(after.others.count, r.others.count + 1);
  assert.ok(!after.entries.some((e) => e.host === "after-restart.test"));
});
