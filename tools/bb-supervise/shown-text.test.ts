// What list shows of a host request is what approve grants. The daemon files hosts as
// normalizeHost() writes them, but the queue is the bundle's to write too: a file written
// there may spell a host that normalizes (so the schema takes it) in other ways.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { ANY_EXIT, run } from "../../lib/proc.ts";
import { QUEUE_VERSION, writeRequest } from "../../lib/supervise/queue.ts";
import { makeTestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { tsArgv } from "../../lib/supervise/testdata/ts-argv.ts";

test("list and approve name a host as approve writes it to the policy: not padded by thousands of spaces, in capitals, with a trailing dot or a Kelvin sign", async (t) => {
  const b = await makeTestBottle();
  t.after(() => b.remove());
  const cases = [
    { id: "aa11", host: `${"\u3000".repeat(2000)}EVIL.example.`, granted: "evil.example" },
    { id: "bb22", host: "\u212aevil.example", granted: "kevil.example" },
  ];
  for (const [i, c] of cases.entries()) {
    await writeRequest(b.queueDir, {
      version: QUEUE_VERSION, id: c.id, kind: "host", host: c.host, tlsPassthrough: false, reason: "docs", question: null,
      status: "pending", answer: null, createdAt: `2026-03-03T03:03:0${i}.000Z`, decidedAt: null,
    });
  }
  const tool = (args: string[]) => run(tsArgv("tools/bb-supervise/main.ts", ["--plan", b.planFile, ...args]), { expect: ANY_EXIT });
  const table = await tool(["list"]);
  assert.deepEqual(table.stdout.split("\n").slice(1, 3), cases.map((c, i) => `${c.id}  host  pending  2026-03-03 03:03:0${i}Z  ${c.granted}: docs`));
  const json = JSON.parse((await tool(["list", "--json"])).stdout) as { host: string }[];
  assert.deepEqual(json.map((r) => r.host), cases.map((c) => c.granted));
  for (const c of cases) {
    const approved = await tool(["approve", c.id]);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stderr, new RegExp(`^approved ${c.id}: ${c.granted.replace(".", "\\.")} added to the firewall policy$`, "m"));
  }
  const policy = JSON.parse(await readFile(b.policyFile, "utf8")) as { hosts: { host: string }[] };
  assert.deepEqual(policy.hosts.map((h) => h.host).slice(1), cases.map((c) => c.granted));
});

test("list escapes the invisible fillers a reason could hide or line text up with, and keeps at most two combining marks on a letter", async (t) => {
  const b = await makeTestBottle();
  t.after(() => b.remove());
  const reason = `need it\u3164\u3164\u3164\u115f\u1160\uffa0 z${"\u0336".repeat(1500)} caf\u00e9 e\u0301\u0323 ❤\ufe0f`;
  await writeRequest(b.queueDir, {
    version: QUEUE_VERSION, id: "cc33", kind: "host", host: "docs.example.org", tlsPassthrough: false, reason, question: null,
    status: "pending", answer: null, createdAt: "2026-03-03T03:03:00.000Z", decidedAt: null,
  });
  const tool = (args: string[]) => run(tsArgv("tools/bb-supervise/main.ts", ["--plan", b.planFile, ...args]), { expect: ANY_EXIT });
  const row = (await tool(["list"])).stdout.split("\n")[1]!;
  assert.equal(row, "cc33  host  pending  2026-03-03 03:03:00Z  docs.example.org: need it\\u3164\\u3164\\u3164\\u115f\\u1160\\uffa0 z\u0336\u0336 caf\u00e9 e\u0301\u0323 ❤\ufe0f");
  const json = (await tool(["list", "--json"])).stdout;
  assert.ok(json.includes("need it\\u3164\\u3164\\u3164\\u115f\\u1160\\uffa0 z"), json.slice(0, 400));
});
