import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import { createLogger } from "./log.ts";

test("a BB_LOG_LEVEL that is no level is said once, naming the variable, its value and the levels, and info is used", (t) => {
  const before = process.env.BB_LOG_LEVEL;
  t.after(() => (before === undefined ? delete process.env.BB_LOG_LEVEL : (process.env.BB_LOG_LEVEL = before)));
  const out: string[] = [];
  const write = (text: string) => void out.push(text);

  process.env.BB_LOG_LEVEL = "bogus";
  const a = createLogger({ write });
  const b = createLogger({ write, prefix: "other" });
  a.info("one");
  a.debug("not shown");
  b.warn("two");
  assert.deepEqual(out, [
    "warning: BB_LOG_LEVEL=bogus is not a log level (one of debug, info, warn, error, silent): using info\n",
    "one\n",
    "otherwarning: two\n",
  ]);

  // A known level, in any case, and an empty value (as unset) are taken without a word;
  // a name the level table merely inherits is no level.
  for (const [value, shown, warned] of [["DEBUG", 2, 0], ["", 1, 0], ["constructor", 1, 1]] as const) {
    out.length = 0;
    process.env.BB_LOG_LEVEL = value;
    a.debug("d");
    a.info("i");
    assert.equal(out.filter((l) => !l.startsWith("warning:")).length, shown, value);
    assert.equal(out.filter((l) => l.startsWith("warning: BB_LOG_LEVEL=")).length, warned, value);
  }
});
