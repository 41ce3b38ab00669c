import assert from "node:assert/strict";
import { test } from "node:test";
import { BbError } from "../../lib/errors.ts";
import { createTurns } from "./turns.ts";

test("createTurns(): a key's turns come one at a time in the order asked; another key's turn does not wait", async () => {
  const turns = createTurns();
  const order: string[] = [];
  const endA = await turns.take("repo");
  const b = turns.take("repo").then((end) => (order.push("b"), end));
  const c = turns.take("repo").then((end) => (order.push("c"), end));
  const endOther = await turns.take("other");
  endOther();
  // Settled promises run before a macrotask: neither turn came while the first is held.
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, []);
  endA();
  const endB = await b;
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, ["b"], "c's turn came while b's was held");
  endB();
  (await c)();
  assert.deepEqual(order, ["b", "c"]);
  // All ended: a new turn comes at once.
  (await turns.take("repo"))();
});

test("createTurns(): a turn not come within its wait is given up (BUSY) and passes on when it comes; one that comes in time is held", async () => {
  const turns = createTurns();
  const endA = await turns.take("repo");
  const given = turns.take("repo", 20);
  const after = turns.take("repo");
  await assert.rejects(given, (e: unknown) => e instanceof BbError && e.code === "BUSY" && /turn at repo did not come within 0\.02s/.test(e.message));
  endA();
  // The given-up turn came and went at once: the next one follows.
  const endAfter = await after;
  const inTime = turns.take("repo", 60_000);
  endAfter();
  const endInTime = await inTime;
  let held = true;
  const next = turns.take("repo").then((end) => ((held = false), end));
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(held, "a turn taken within its wait was passed on while held");
  endInTime();
  (await next)();
});
