import assert from "node:assert/strict";
import { test } from "node:test";
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
