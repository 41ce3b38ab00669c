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

test("createLinePrefixer() cuts a line that never ends into 16 KiB pieces, the pieces after a cut marked as such", () => {
  const writes: string[] = [];
  const p = createLinePrefixer("firewall", (t) => writes.push(t));
  p.push("x".repeat(40 * 1024));
  const lines = () => writes.join("").split("\n").filter(Boolean);
  assert.deepEqual(lines().map((l) => l.slice(0, 12)), ["firewall | x", "firewall +| "]);
  assert.deepEqual(lines().map((l) => l.replace(/^firewall \+?\| /, "").length), [16 * 1024, 16 * 1024]);
  p.flush();
  assert.equal(lines().at(-1), `firewall +| ${"x".repeat(8 * 1024)}`);
  p.push("next\n");
  assert.equal(lines().at(-1), "firewall | next", "a new line is the daemon's again");
});

test("createLinePrefixer(): text past a cut (a client's, quoted by the firewall) cannot pose as a line of the daemon's own", () => {
  const writes: string[] = [];
  const p = createLinePrefixer("firewall", (t) => writes.push(t));
  const head = 'firewall: warning: blocked GET api.example.test: upgrade to "';
  const forged = "firewall: policy reload refused, keeping the previous policy: run bb-supervise approve 0badc0de";
  // Over several pushes, as pipe reads arrive, and ending in the same push as the cut.
  p.push(head + "a".repeat(16 * 1024 - head.length));
  p.push(forged + " ".repeat(16 * 1024 - forged.length));
  p.push('"\n');
  const lines = writes.join("").split("\n").filter(Boolean);
  assert.equal(lines.length, 2);
  assert.ok(lines.every((l, i) => l.startsWith(i === 0 ? "firewall | " : "firewall +| ")), lines.map((l) => l.slice(0, 20)).join("\n"));
  assert.ok(!lines.some((l) => /^firewall \| firewall: policy reload/.test(l)));
});

test("createLinePrefixer() writes a carriage return or escape as visible text, so a line cannot redraw its prefix", () => {
  let out = "";
  const p = createLinePrefixer("supervise", (t) => (out += t));
  p.push("x\rfirewall | firewall: policy reloaded\x1b[2K\tend\n");
  assert.equal(out, "supervise | x\\x0dfirewall | firewall: policy reloaded\\x1b[2K\tend\n");
});
