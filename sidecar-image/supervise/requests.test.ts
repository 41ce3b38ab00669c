// The request book against a real queue dir: what an agent calling in a loop can file,
// and how many of its calls it can keep waiting.
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import type { BbError } from "../../lib/errors.ts";
import { answerRequest, denyRequest } from "../../lib/supervise/decide.ts";
import { listRequests, type QueueRequest } from "../../lib/supervise/queue.ts";
import { makeTestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { createRequestBook, MAX_WAITING, MAX_WAITING_PER_SESSION } from "./requests.ts";

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

/** Every request in the queue once `n` are filed (the calls file them in the background). */
async function filedCount(queueDir: string, n: number): Promise<QueueRequest[]> {
  for (let i = 0; i < 200; i++) {
    const all = await listRequests(queueDir);
    if (all.length >= n) return all;
    await sleep(25);
  }
  throw new Error(`${n} requests were never filed`);
}

test("past maxWaitingPerSession calls in one session, or maxWaiting in all, a call is refused BUSY at once and files nothing; a call that ends frees its place", async () => {
  const b = await makeTestBottle();
  const ac = new AbortController();
  try {
    const book = createRequestBook({ queueDir: b.queueDir, waitMs: 30_000, pollMs: 10, maxWaiting: 3, maxWaitingPerSession: 2 });
    const busy = (re: RegExp) => (e: BbError) => e.code === "BUSY" && re.test(e.message);
    const first = book.forSession();
    const second = book.forSession();
    const one = first.askOperator("one?", ac.signal);
    const two = first.askOperator("two?", ac.signal);
    await assert.rejects(first.askOperator("three?", ac.signal), busy(/^This session has 2 calls waiting for the operator already \(at most 2 at once\): call check_request/));
    await assert.rejects(first.requestHost({ host: "a.example.org", reason: "r", tlsPassthrough: false }, ac.signal), busy(/This session has 2 calls/));
    const host = second.requestHost({ host: "b.example.org", reason: "r", tlsPassthrough: false }, ac.signal);
    await assert.rejects(second.askOperator("four?", ac.signal), busy(/^This bottle has 3 calls waiting for the operator already \(at most 3 at once\)/));
    await assert.rejects(book.forSession().askOperator("five?", ac.signal), busy(/This bottle has 3 calls/));
    assert.equal(book.callsInFlight(), 3);

    const filed = await filedCount(b.queueDir, 3);
    assert.deepEqual(filed.map((r) => r.question ?? r.host).sort(), ["b.example.org", "one?", "two?"], "a refused call filed nothing");
    await answerRequest({ queueDir: b.queueDir }, filed.find((r) => r.question === "one?")!.id, "yes");
    assert.equal((await one).answer, "yes");
    assert.equal(book.callsInFlight(), 2);
    const six = first.askOperator("six?", ac.signal); // the answered call's place, in its session
    assert.equal(book.callsInFlight(), 3);

    ac.abort(); // the clients cancel: each call answers with what it has
    assert.deepEqual([(await two).status, (await host).status, (await six).status], ["pending", "pending", "pending"]);
    assert.equal(book.callsInFlight(), 0);
    assert.equal((await readdir(b.queueDir)).length, 4);
  } finally {
    ac.abort();
    await b.remove();
  }
});

test("every call waiting on one request, from many sessions, gets the operator's one decision", async () => {
  const b = await makeTestBottle();
  try {
    const book = createRequestBook({ queueDir: b.queueDir, waitMs: 30_000, pollMs: 10 });
    const sessions = Array.from({ length: MAX_WAITING / MAX_WAITING_PER_SESSION }, () => book.forSession());
    const calls = sessions.flatMap((s) => Array.from({ length: MAX_WAITING_PER_SESSION }, () => s.requestHost({ host: "docs.example.org", reason: "r", tlsPassthrough: false })));
    assert.equal(book.callsInFlight(), MAX_WAITING);
    await assert.rejects(book.forSession().requestHost({ host: "docs.example.org", reason: "r", tlsPassthrough: false }), (e: BbError) => e.code === "BUSY");
    const [request] = await filedCount(b.queueDir, 1);
    // Decided only once every call has joined it: a call still looking would file anew.
    for (let i = 0; i < 200 && book.callsWaiting() < MAX_WAITING; i++) await sleep(25);
    assert.equal(book.callsWaiting(), MAX_WAITING);
    await denyRequest({ queueDir: b.queueDir }, request!.id, "no");
    const answers = await Promise.all(calls);
    assert.deepEqual(new Set(answers.map((r) => `${r.id} ${r.status} ${r.answer}`)), new Set([`${request!.id} denied no`]));
    assert.equal(answers.length, MAX_WAITING);
    assert.equal(book.callsInFlight(), 0);
    assert.equal((await readdir(b.queueDir)).length, 1);
  } finally {
    await b.remove();
  }
});
