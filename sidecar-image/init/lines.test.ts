import assert from "node:assert/strict";
import { test } from "node:test";
import { createLinePrefixer } from "./lines.ts";

test("createLinePrefixer() writes only whole prefixed lines, holding a split line until its newline", () => {
  const writes: string[] = [];
  const p = createLinePrefixer("egress", (t) => writes.push(t));
  p.push("one\ntw");
  p.push("o\nthr");
  p.push("ee");
  assert.deepEqual(writes, ["egress | one\n", "egress | two\n"]);
  p.flush();
  assert.deepEqual(writes, ["egress | one\n", "egress | two\n", "egress | three\n"]);
  p.flush();
  assert.equal(writes.length, 3, "nothing left to flush");
});

test("createLinePrefixer() cuts a line that never ends into 16 KiB pieces", () => {
  const writes: string[] = [];
  const p = createLinePrefixer("firewall", (t) => writes.push(t));
  p.push("x".repeat(40 * 1024));
  const lines = writes.join("").split("\n").filter(Boolean);
  assert.deepEqual(lines.map((l) => l.length - "firewall | ".length), [16 * 1024, 16 * 1024]);
  p.flush();
  assert.equal(writes.join("").split("\n").filter(Boolean).at(-1)!.length - "firewall | ".length, 8 * 1024);
});
