import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger } from "./log.ts";
import { columnsOf, fitColumns, printable, printableLines } from "./printable.ts";

test("printable() escapes control, C1, bidi and separator characters and keeps letters of any script", () => {
  assert.equal(printable("evil\x1b[2K\rdocs"), "evil\\x1b[2K\\x0ddocs");
  assert.equal(printable("a\u009bb\u0085c\x7f"), "a\\x9bb\\x85c\\x7f");
  assert.equal(printable("x\u202egpj.exe\u200b\u2028"), "x\\u202egpj.exe\\u200b\\u2028");
  assert.equal(printable("Grüße, 日本, émoji 🎉"), "Grüße, 日本, émoji 🎉");
  // Letters and marks that draw nothing are escaped too; an emoji's variation selector stays.
  assert.equal(printable("a\u3164b\u115f\u1160c\uffa0d\u034fe ❤\ufe0f"), "a\\u3164b\\u115f\\u1160c\\uffa0d\\u034fe ❤\ufe0f");
});

test("printableLines() keeps line breaks and tabs, and every message the logger writes goes through it", () => {
  assert.equal(printableLines("one\n\ttwo\u009b2J\r"), "one\n\ttwo\\x9b2J\\x0d");
  const out: string[] = [];
  const log = createLogger({ level: "debug", prefix: "firewall: ", write: (t) => void out.push(t) });
  log.warn("blocked POST a.test: content-encoding \u009b1;1f\u001b]0;title\u0007");
  log.error("first line\nsecond line");
  assert.deepEqual(out, ["firewall: warning: blocked POST a.test: content-encoding \\x9b1;1f\\x1b]0;title\\x07\n", "firewall: error: first line\nsecond line\n"]);
});

test("fitColumns() cuts by terminal columns: wide characters count two, combining marks none, and no character is split", () => {
  const width = (s: string) => [...s].reduce((n, c) => n + columnsOf(c), 0);
  assert.equal(fitColumns("r".repeat(100), 100), "r".repeat(100));
  assert.equal(fitColumns("r".repeat(101), 100), `${"r".repeat(99)}…`);
  const cjk = fitColumns("漢".repeat(80), 100);
  assert.equal(cjk, `${"漢".repeat(49)}…`);
  assert.equal(width(cjk), 99);
  const emoji = fitColumns("😀".repeat(60), 100);
  assert.ok(width(emoji) <= 100 && !/[\ud800-\udbff](?![\udc00-\udfff])/.test(emoji), "a surrogate pair was split");
  assert.equal(fitColumns("e\u0301".repeat(100), 100), "e\u0301".repeat(100), "combining accents took columns");
  assert.equal(fitColumns(`${"a".repeat(98)}漢漢`, 100), `${"a".repeat(98)}…`, "a wide character straddled the limit");
});
