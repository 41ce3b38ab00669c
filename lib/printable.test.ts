import assert from "node:assert/strict";
import { test } from "node:test";
import { printable } from "./printable.ts";

test("printable() escapes control, C1, bidi and separator characters and keeps letters of any script", () => {
  assert.equal(printable("evil\x1b[2K\rdocs"), "evil\\x1b[2K\\x0ddocs");
  assert.equal(printable("a\u009bb\u0085c\x7f"), "a\\x9bb\\x85c\\x7f");
  assert.equal(printable("x\u202egpj.exe\u200b\u2028"), "x\\u202egpj.exe\\u200b\\u2028");
  assert.equal(printable("Grüße, 日本, émoji 🎉"), "Grüße, 日本, émoji 🎉");
});
