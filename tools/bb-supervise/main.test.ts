// bb-supervise as the operator runs it: a real process against a bottle's state dir.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { run } from "../../lib/proc.ts";
import { columnsOf } from "../../lib/printable.ts";
import { QUEUE_VERSION, readRequest, writeRequest, type QueueRequest } from "../../lib/supervise/queue.ts";
import { FirewallPolicy } from "../../lib/sidecar-config.ts";
import { makeTestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { tsArgv } from "../../lib/supervise/testdata/ts-argv.ts";

function request(id: string, fields: Partial<QueueRequest>): QueueRequest {
  return {
    version: QUEUE_VERSION,
    id,
    kind: "host",
    host: "docs.example.org",
    tlsPassthrough: false,
    reason: "read the docs",
    question: null,
    status: "pending",
    answer: null,
    createdAt: `2026-03-03T03:03:0${id.length % 10}.000Z`,
    decidedAt: null,
    ...fields,
  };
}

const tool = (args: string[], env: Record<string, string> = {}) => run(tsArgv("tools/bb-supervise/main.ts", args), { expect: [0, 1, 2, 3], env });

test("list shows pending requests as a table, --all adds decided ones, --json prints them as data", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, request("aa11", { tlsPassthrough: true }));
    await writeRequest(b.queueDir, request("bb222", { kind: "question", host: null, reason: null, question: "Which\nbranch?" }));
    await writeRequest(b.queueDir, request("cc3333", { status: "denied", answer: "no", decidedAt: "2026-03-03T04:00:00.000Z" }));
    const decided = { status: "approved", decidedAt: "2026-03-03T04:00:00.000Z" } as const;
    await writeRequest(b.queueDir, request("dd44444", { kind: "question", host: null, reason: null, question: "Which tag?", answer: "v2", ...decided }));
    await writeRequest(b.queueDir, request("ee555555", decided));

    const table = await tool(["--slug", b.slug, "--state-dir", b.stateRoot, "list"]);
    assert.equal(table.code, 0, table.stderr);
    assert.deepEqual(table.stdout.split("\n"), [
      "ID     KIND      STATUS   CREATED               REQUEST",
      "aa11   host      pending  2026-03-03 03:03:04Z  (TLS PASSTHROUGH, not scanned) docs.example.org: read the docs",
      "bb222  question  pending  2026-03-03 03:03:05Z  Which branch?",
      "",
    ]);

    // BB_STATE_DIR stands in for --state-dir, as for every tool.
    const json = await tool(["--slug", b.slug, "list", "--all", "--json"], { BB_STATE_DIR: b.stateRoot });
    // The status the table shows: an answered question is "answered", not its file's "approved".
    assert.deepEqual(
      (JSON.parse(json.stdout) as { id: string; status: string }[]).map((r) => [r.id, r.status]),
      [["aa11", "pending"], ["bb222", "pending"], ["cc3333", "denied"], ["dd44444", "answered"], ["ee555555", "approved"]],
    );
    assert.match((await tool(["--slug", b.slug, "list", "--all"], { BB_STATE_DIR: b.stateRoot })).stdout, /dd44444\s+question\s+answered/);
    assert.equal((await readRequest(b.queueDir, "dd44444"))?.status, "approved", "the queue file keeps what the daemon reads");
  } finally {
    await b.remove();
  }
});

test("list never cuts the host a long request asks for, nor hides its passthrough flag; only the reason is shortened", async () => {
  const b = await makeTestBottle();
  try {
    const host = `${"a".repeat(60)}.${"b".repeat(60)}.${"c".repeat(60)}.attacker.example`;
    await writeRequest(b.queueDir, request("dd44", { host, tlsPassthrough: true, reason: "r".repeat(300) }));
    const table = await tool(["--slug", b.slug, "--state-dir", b.stateRoot, "list"]);
    const row = table.stdout.split("\n")[1]!;
    assert.ok(row.includes(`(TLS PASSTHROUGH, not scanned) ${host}: ${"r".repeat(99)}…`), row);
  } finally {
    await b.remove();
  }
});

test("list cuts a question in wide characters by the columns it takes, so its row does not wrap", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, request("ee55", { kind: "question", host: null, reason: null, question: "この変更をマージしてもよいですか".repeat(10) }));
    const row = (await tool(["--slug", b.slug, "--state-dir", b.stateRoot, "list"])).stdout.split("\n")[1]!;
    const question = row.slice(row.indexOf("この"));
    assert.equal([...question].reduce((n, c) => n + columnsOf(c), 0), 99, question);
    assert.ok(question.endsWith("…"), question);
  } finally {
    await b.remove();
  }
});

test("approve, deny (reason as words or --reason) and answer decide requests; approving without a running bundle warns and still widens the policy", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, request("aa11", {}));
    await writeRequest(b.queueDir, request("bb22", { host: "paste.example.com" }));
    await writeRequest(b.queueDir, request("cc33", { kind: "question", host: null, reason: null, question: "which branch?" }));

    const approved = await tool(["--plan", b.planFile, "approve", "aa11"]);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stderr, /no running bundle/);
    assert.match(approved.stderr, /approved aa11: docs\.example\.org added to the firewall policy/);
    const hosts = FirewallPolicy.parse(JSON.parse(await readFile(b.policyFile, "utf8"))).hosts;
    assert.deepEqual(hosts.map((h) => h.host), ["api.anthropic.com", "docs.example.org"]);

    const both = await tool(["--plan", b.planFile, "deny", "bb22", "no", "--reason", "paste sites"]);
    assert.equal(both.code, 2, both.stderr);
    assert.match(both.stderr, /Give the reason once/);
    assert.equal((await tool(["--plan", b.planFile, "deny", "bb22", "no", "paste", "sites"])).code, 0);
    assert.deepEqual([(await readRequest(b.queueDir, "bb22"))?.status, (await readRequest(b.queueDir, "bb22"))?.answer], ["denied", "no paste sites"]);
    await writeRequest(b.queueDir, request("dd44", { host: "pastebin.example.com" }));
    assert.equal((await tool(["--plan", b.planFile, "deny", "dd44", "--reason", "not this one"])).code, 0);
    assert.equal((await readRequest(b.queueDir, "dd44"))?.answer, "not this one");

    assert.equal((await tool(["--plan", b.planFile, "answer", "cc33", "use", "main"])).code, 0);
    assert.equal((await readRequest(b.queueDir, "cc33"))?.answer, "use main");
    const twice = await tool(["--plan", b.planFile, "answer", "cc33", "again"]);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /Request cc33 was already answered at /);
    assert.match((await tool(["--plan", b.planFile, "list", "--all"])).stdout, /cc33\s+question\s+answered/);
  } finally {
    await b.remove();
  }
});

test("approve grants a request only as list showed it: one rewritten since is refused with exit 1, both named, and the policy stays as it was", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, request("3fa2c1b9", { reason: "read the stdlib docs" }));
    const listed = await tool(["--plan", b.planFile, "list"]);
    assert.match(listed.stdout, /^3fa2c1b9 .* docs\.example\.org: read the stdlib docs$/m);
    // Meanwhile something in the bundle rewrites the same id.
    await writeRequest(b.queueDir, request("3fa2c1b9", { host: "*.attacker.example", tlsPassthrough: true, reason: "read the stdlib docs" }));
    const before = await readFile(b.policyFile, "utf8");

    const approved = await tool(["--plan", b.planFile, "approve", "3fa2c1b9"]);
    assert.equal(approved.code, 1, approved.stderr);
    assert.match(approved.stderr, /^bb-supervise: error: Request 3fa2c1b9 changed after bb-supervise first showed it: it asked for docs\.example\.org, and now asks for \(TLS PASSTHROUGH, not scanned\) \*\.attacker\.example\. .*Deny it \(`bb-supervise --slug shell-t3st deny 3fa2c1b9`\)/m);
    assert.equal(await readFile(b.policyFile, "utf8"), before);
    // list says so too, above the table, every time.
    const again = await tool(["--plan", b.planFile, "list"]);
    assert.match(again.stderr, /^bb-supervise: warning: Request 3fa2c1b9 changed after bb-supervise first showed it: it asked for docs\.example\.org, and now asks for \(TLS PASSTHROUGH, not scanned\) \*\.attacker\.example\. /m);
    assert.equal((await tool(["--plan", b.planFile, "deny", "3fa2c1b9"])).code, 0);

    // approve says what it granted, passthrough and all.
    await writeRequest(b.queueDir, request("bb22", { host: "pkg.example.net", tlsPassthrough: true }));
    const ok = await tool(["--plan", b.planFile, "approve", "bb22"]);
    assert.match(ok.stderr, /approved bb22: \(TLS PASSTHROUGH, not scanned\) pkg\.example\.net added to the firewall policy/);
  } finally {
    await b.remove();
  }
});

test("an unknown id fails with exit 1 naming the pending ids; an unknown slug names the missing plan", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, request("aa11", {}));
    const unknown = await tool(["--plan", b.planFile, "approve", "zz99"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^bb-supervise: error: No supervise request "zz99" in .*; pending: aa11 \(docs\.example\.org\)$/m);
    assert.equal(unknown.stdout, "");

    const noBottle = await tool(["--state-dir", b.stateRoot, "--slug", "nope-x1", "list"]);
    assert.equal(noBottle.code, 1);
    assert.match(noBottle.stderr, /No bottle "nope-x1": .*bottles\/nope-x1\/plan\.json does not exist/);
  } finally {
    await b.remove();
  }
});

test("list never lets the agent's text drive the operator's terminal: control, C1 and bidi characters show escaped in the table and in --json", async () => {
  const b = await makeTestBottle();
  try {
    const reason = "docs\u001b[2K\r\u001b[1Abb22 approved\u0007\u009b31m\u0085\u202eevil\u200b";
    await writeRequest(b.queueDir, request("aa11", { reason }));
    await writeRequest(b.queueDir, request("bb22", { kind: "question", host: null, reason: null, question: "which?\u001b]0;title\u0007" }));

    const table = await tool(["--plan", b.planFile, "list"]);
    assert.equal(table.code, 0, table.stderr);
    assert.doesNotMatch(table.stdout, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/u);
    assert.equal(table.stdout.split("\n").length, 4, "one line per request");
    assert.match(table.stdout, /aa11 .*docs\.example\.org: docs\\x1b\[2K \\x1b\[1Abb22 approved\\x07\\x9b31m\\x85\\u202eevil\\u200b$/m);
    assert.match(table.stdout, /bb22 .*which\?\\x1b\]0;title\\x07/);

    const json = await tool(["--plan", b.planFile, "list", "--json"]);
    assert.doesNotMatch(json.stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/u);
    assert.deepEqual((JSON.parse(json.stdout) as QueueRequest[]).map((r) => r.reason ?? r.question), [reason, "which?\u001b]0;title\u0007"], "--json still carries the exact text");
  } finally {
    await b.remove();
  }
});
