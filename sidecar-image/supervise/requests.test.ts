// The request book against a real queue dir: what an agent calling in a loop can file.
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { test } from "node:test";
import type { BbError } from "../../lib/errors.ts";
import { denyRequest } from "../../lib/supervise/decide.ts";
import { makeTestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { createRequestBook } from "./requests.ts";

test("an agent cannot pile up more than maxPending undecided requests; a retry still joins, and a decision frees a place", async () => {
  const b = await makeTestBottle();
  try {
    const book = createRequestBook({ queueDir: b.queueDir, waitMs: 0, pollMs: 10, maxPending: 2 });
    const first = await book.requestHost({ host: "a.example.org", reason: "r", tlsPassthrough: false });
    await book.askOperator("q?");
    const full = (e: BbError) => e.code === "STATE" && /has 2 requests from this bottle to decide already \(at most 2/.test(e.message);
    await assert.rejects(book.askOperator("one more?"), full);
    await assert.rejects(book.requestHost({ host: "b.example.org", reason: "r", tlsPassthrough: false }), full);
    assert.equal((await book.requestHost({ host: "a.example.org", reason: "again", tlsPassthrough: false })).id, first.id, "a retry joins its request");
    assert.equal((await readdir(b.queueDir)).length, 2);

    await denyRequest({ queueDir: b.queueDir }, first.id, null);
    assert.equal((await book.askOperator("now?")).status, "pending");
    assert.equal((await readdir(b.queueDir)).length, 3);
  } finally {
    await b.remove();
  }
});

test("calls made at once still file no more than maxPending, and one host once", async () => {
  const b = await makeTestBottle();
  try {
    const book = createRequestBook({ queueDir: b.queueDir, waitMs: 0, pollMs: 10, maxPending: 5 });
    const hosts = Array.from({ length: 10 }, () => book.requestHost({ host: "same.example.org", reason: "r", tlsPassthrough: false }));
    const questions = Array.from({ length: 50 }, (_, i) => book.askOperator(`question ${i}?`));
    assert.equal(new Set((await Promise.all(hosts)).map((r) => r.id)).size, 1, "the same host was filed more than once");
    const settled = await Promise.allSettled(questions);
    assert.equal(settled.filter((s) => s.status === "fulfilled").length, 4);
    assert.equal((await readdir(b.queueDir)).length, 5, "the cap held");
  } finally {
    await b.remove();
  }
});
