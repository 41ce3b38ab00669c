// The queue is written inside the bundle too (by the supervise daemon the agent talks to).
// These are the files a compromised daemon could write, read by the real bb-supervise: none
// may redraw the operator's terminal or hang the command.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { run } from "../../lib/proc.ts";
import { QUEUE_VERSION, type QueueRequest } from "../../lib/supervise/queue.ts";
import { makeTestBottle, type TestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { tsArgv } from "../../lib/supervise/testdata/ts-argv.ts";
import { formatTable } from "./table.ts";

const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/u;
/** Run `body` against a fresh test bottle, removed afterwards whatever happens. */
async function withBottle(body: (b: TestBottle) => Promise<void>): Promise<void> {
  const b = await makeTestBottle();
  try {
    await body(b);
  } finally {
    await b.remove();
  }
}

const tool = (args: string[]) => run(tsArgv("tools/bb-supervise/main.ts", args), { expect: [0, 1, 2, 3], timeoutMs: 20_000 });

function request(id: string, fields: Partial<QueueRequest>): QueueRequest {
  return {
    version: QUEUE_VERSION, id, kind: "host", host: "evil.example", tlsPassthrough: false, reason: "x", question: null,
    status: "pending", answer: null, createdAt: "2026-03-03T03:03:03.000Z", decidedAt: null, ...fields,
  };
}

// Erase the line, return, and draw a benign-looking row over the real one.
const FAKE_ROW = "\u001b[2K\r" + "aa11  host  pending  2026-03-03 03:03:03Z  docs.python.org: read the docs\u001b[8m";

test("list never writes a queue file's createdAt raw: it cannot redraw the table (the schema refuses the file, and says so)", () =>
  withBottle(async (b) => {
    await writeFile(join(b.queueDir, "aa11.json"), JSON.stringify(request("aa11", { createdAt: `2026-03-03T03:03:03.000Z${FAKE_ROW}` })));
    const r = await tool(["--plan", b.planFile, "list"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /aa11\.json: createdAt: Invalid .*datetime.* \(skipped\)/i);
    assert.equal(r.stdout, "no requests\n");
  }));

test("formatTable() escapes a createdAt the schema would refuse: the table is a defence of its own", () => {
  const table = formatTable([request("aa11", { createdAt: `2026-03-03T03:03:03.000Z${FAKE_ROW}` })]);
  assert.doesNotMatch(table, RAW, JSON.stringify(table));
  assert.match(table, /2026-03-03 03:03:03\.000Z\\x1b\[2K\\x0daa11/);
});

test("list writes an agent's reason in a table row with its control characters escaped: it cannot redraw the table", () =>
  withBottle(async (b) => {
    await writeFile(join(b.queueDir, "aa11.json"), JSON.stringify(request("aa11", { host: "evil.example", reason: `need it${FAKE_ROW}` })));
    const r = await tool(["--plan", b.planFile, "list"]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, RAW, JSON.stringify(r.stdout));
    const rows = r.stdout.trimEnd().split("\n");
    assert.equal(rows.length, 2, r.stdout);
    // The carriage return is white space, shown as one space like the rest.
    assert.match(rows[1]!, /^aa11 +host +pending +2026-03-03 03:03:03Z +evil\.example: need it\\x1b\[2K aa11 host .*read the docs\\x1b\[8m$/, r.stdout);
  }));

test("a queue file that does not parse is reported without its text reaching the terminal raw", () =>
  withBottle(async (b) => {
    // zod's enum message quotes the value it got; V8's JSON.parse message quotes the text.
    await writeFile(join(b.queueDir, "aa11.json"), JSON.stringify({ ...request("aa11", {}), kind: "\u001b]0;pwned\u0007\u001b[2J" }));
    await writeFile(join(b.queueDir, "bb22.json"), "\u001b[2J\u001b[H not json");
    const r = await tool(["--plan", b.planFile, "list"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /skipped/);
    assert.doesNotMatch(r.stderr, RAW, JSON.stringify(r.stderr));
  }));

test("a queue file that does not parse is reported on one line: what the message quotes of it cannot forge table rows with newlines", () =>
  withBottle(async (b) => {
    const rows = "\n\nID        KIND  STATUS   CREATED               REQUEST\n3fa2c1b9  host  pending  2026-03-03 03:03:03Z  docs.python.org: read the docs\n";
    // zod quotes the enum value it got; V8's JSON.parse quotes the text near the error.
    await writeFile(join(b.queueDir, "aa11.json"), JSON.stringify({ ...request("aa11", {}), kind: `host${rows}` }));
    await writeFile(join(b.queueDir, "bb22.json"), `{"version":1,${rows} oops`);
    const r = await tool(["--plan", b.planFile, "list"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "no requests\n");
    const lines = r.stderr.trimEnd().split("\n");
    assert.deepEqual(lines.map((l) => /^bb-supervise: warning: .*\/(\w+)\.json.* \(skipped\)$/.exec(l)?.[1]).sort(), ["aa11", "bb22"], r.stderr);
    assert.match(r.stderr, /aa11\.json: kind: .*received 'host\\x0a\\x0aID {8}KIND/);
    // approve names the bad file in its error, on one line too.
    const approve = await tool(["--plan", b.planFile, "approve", "aa11"]);
    assert.equal(approve.code, 1);
    assert.match(approve.stderr, /^bb-supervise: error: .*aa11\.json: kind: .*received 'host\\x0a.*'\n$/);
  }));

test("a queue entry that is a FIFO, a symlink or huge is skipped with a warning, and list goes on with the rest", () =>
  withBottle(async (b) => {
    execFileSync("mkfifo", [join(b.queueDir, "aa11.json")]);
    await symlink(b.policyFile, join(b.queueDir, "bb22.json"));
    await writeFile(join(b.queueDir, "cc33.json"), JSON.stringify(request("cc33", { reason: "r".repeat(300_000) })));
    await writeFile(join(b.queueDir, "dd44.json"), JSON.stringify(request("dd44", { host: "docs.example.org" })));
    const r = await tool(["--plan", b.planFile, "list"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /aa11\.json: it is a FIFO, not a regular file \(skipped\)/);
    assert.match(r.stderr, /bb22\.json: it is a symlink \(skipped\)/);
    assert.match(r.stderr, /cc33\.json: it is over 262144 bytes, more than bot-bottle ever writes there \(skipped\)/);
    assert.match(r.stdout, /dd44 .*docs\.example\.org/);
  }));

test("a queue folder swapped for a symlink is refused before anything is read or written through it", async () => {
  const b = await makeTestBottle();
  const elsewhere = await mkdtemp(join(tmpdir(), "bb-elsewhere-"));
  try {
    await rm(b.queueDir, { recursive: true });
    await symlink(elsewhere, b.queueDir);
    await writeFile(join(elsewhere, "aa11.json"), JSON.stringify(request("aa11", {})));
    for (const args of [["list"], ["deny", "aa11"]]) {
      const r = await tool(["--plan", b.planFile, ...args]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /is a symlink, which bot-bottle never makes: something in the bundle replaced it/);
    }
    assert.deepEqual(await readdir(elsewhere), ["aa11.json"]);
    assert.equal(JSON.parse(await readFile(join(elsewhere, "aa11.json"), "utf8")).status, "pending");
  } finally {
    await b.remove();
    await rm(elsewhere, { recursive: true, force: true });
  }
});
