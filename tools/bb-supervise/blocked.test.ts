// bb-supervise blocked as the operator runs it: a real process reading the firewall's
// record of refusals from a bottle's state dir (a file the bundle writes, so read as
// untrusted: printable, bounded, never through a symlink).
import assert from "node:assert/strict";
import { mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { test } from "node:test";
import { blockedRecordPath, BLOCKED_VERSION, MAX_RECORD_BYTES, type BlockedRecord } from "../../lib/blocked-record.ts";
import { run } from "../../lib/proc.ts";
import { makeTestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { tsArgv } from "../../lib/supervise/testdata/ts-argv.ts";

const tool = (args: string[]) => run(tsArgv("tools/bb-supervise/main.ts", args), { expect: [0, 1, 2, 3] });

const entry = (host: string, rule: string, count: number, sample: string) => ({
  host, rule, count, sample, firstSeen: "2026-03-03T03:03:03.000Z", lastSeen: "2026-03-03T04:04:04.123Z",
});

async function withRecord(record: unknown | string) {
  const b = await makeTestBottle({ bundle: { container: "bb-shell-t3st-bundle" } });
  const path = blockedRecordPath(b.plan.files.dir);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, typeof record === "string" ? record : JSON.stringify(record));
  return { b, path, args: ["--slug", b.slug, "--state-dir", b.stateRoot, "blocked"] };
}

test("blocked shows the record as a table (agent text made printable) and says on stderr how many refusals it only counted; --json prints the record", async () => {
  const record: BlockedRecord = {
    version: BLOCKED_VERSION, limits: { gate: 400, content: 100 }, updatedAt: "2026-03-03T04:04:05.000Z",
    entries: [
      entry("first.exfil.test", "not allowed", 2, "CONNECT: host is not in this bottle's allowlist"),
      entry("api.test", "dlp aws", 1, "POST: detector aws matched in body (AWS access key: AKIA…)"),
      // Written by the bundle: what a firewall would never write must still not reach the terminal raw.
      entry("evil\u001b[2J.test", "cannot\u202escan", 1, `GET: \u001b]0;pwned\u0007${"x".repeat(300)}`),
    ],
    others: { count: 1234, firstSeen: "2026-03-03T05:00:00.000Z", lastSeen: "2026-03-03T06:00:00.000Z" },
  };
  const { b, args } = await withRecord(record);
  try {
    const table = await tool(args);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.split("\n");
    assert.match(lines[0]!, /^HOST\s+RULE\s+COUNT\s+FIRST SEEN\s+LAST SEEN\s+SAMPLE$/);
    assert.match(lines[1]!, /^first\.exfil\.test\s+not allowed\s+2\s+2026-03-03 03:03:03Z\s+2026-03-03 04:04:04Z\s+CONNECT: host is not in this bottle's allowlist$/);
    assert.match(lines[2]!, /^api\.test\s+dlp aws\s+1\s/);
    assert.match(lines[3]!, /^evil\\x1b\[2J\.test\s+cannot\\u202escan\s+1\s.*GET: \\x1b\]0;pwned\\x07x+…$/);
    assert.equal(lines.length, 5);
    assert.doesNotMatch(table.stdout, /[\u0000-\u0009\u000b-\u001f\u202e]/u);
    assert.match(table.stderr, /1234 more refusals between 2026-03-03 05:00:00Z and 2026-03-03 06:00:00Z are counted but not listed: the record keeps the first 400 hosts refused by name or port and the first 100 refusals of what was sent to an allowed host, whatever follows; the latest are in the bundle's log \(docker logs bb-shell-t3st-bundle\)/);

    const json = await tool([...args, "--json"]);
    assert.equal(json.code, 0, json.stderr);
    assert.doesNotMatch(json.stdout, /\u202e/u);
    assert.deepEqual(JSON.parse(json.stdout), record);
  } finally {
    await b.remove();
  }
});

test("blocked lists a client without the agent key and a secret's allowlist entry, and names every budget the record keeps", async () => {
  const record: BlockedRecord = {
    version: BLOCKED_VERSION, limits: { gate: 400, content: 100, keyless: 20, contentPerRule: 10 }, updatedAt: "2026-03-03T04:04:05.000Z",
    entries: [
      entry("knock.test", "no agent key", 3, "CONNECT: no agent key (407) from 127.0.0.1: this proxy serves only its bottle's agent"),
      { ...entry("x1.wild.test", "dlp aws", 1, "GET: detector aws matched in url (AWS access key id: AKIA…)"), under: "*.wild.test" },
    ],
    others: { count: 12, firstSeen: "2026-03-03T05:00:00.000Z", lastSeen: "2026-03-03T06:00:00.000Z" },
  };
  const { b, args } = await withRecord(record);
  try {
    const table = await tool(args);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout.split("\n")[1]!, /^knock\.test\s+no agent key\s+3\s/);
    assert.match(table.stderr, /the record keeps the first 400 hosts refused by name or port and the first 100 refusals of what was sent to an allowed host \(at most 10 per allowlist entry\), and the first 20 asked for by a client without the agent key, whatever follows/);
    assert.deepEqual(JSON.parse((await tool([...args, "--json"])).stdout), record);
  } finally {
    await b.remove();
  }
});

test("blocked with no record says nothing was refused (an empty record with --json)", async () => {
  const b = await makeTestBottle();
  try {
    const args = ["--slug", b.slug, "--state-dir", b.stateRoot, "blocked"];
    const table = await tool(args);
    assert.equal(table.code, 0, table.stderr);
    assert.equal(table.stdout, "nothing refused\n");
    const json = JSON.parse((await tool([...args, "--json"])).stdout) as BlockedRecord;
    assert.deepEqual([json.entries, json.others.count], [[], 0]);
  } finally {
    await b.remove();
  }
});

test("blocked refuses a record that is a symlink, oversized or not the record's shape, naming the file", async () => {
  for (const [make, why] of [
    [async (path: string) => symlink("/etc/passwd", path), /^bb-supervise: error: Cannot read the firewall's record of refusals: \S+\/firewall-blocked\/blocked\.json is a symlink, which the firewall never writes$/m],
    [async (path: string) => writeFile(path, " ".repeat(MAX_RECORD_BYTES + 1)), /^bb-supervise: error: Cannot read the firewall's record of refusals: \S+\/blocked\.json is over 2097152 bytes/m],
    [async (path: string) => writeFile(path, JSON.stringify({ version: 1, entries: "x" })), /blocked\.json: limits: Required/],
  ] as const) {
    const { b, path, args } = await withRecord("{}");
    try {
      await rm(path);
      await make(path);
      const r = await tool(args);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, why);
    } finally {
      await b.remove();
    }
  }
});
