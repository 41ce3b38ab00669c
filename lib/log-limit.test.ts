// The limiter for lines the agent can cause, in-process: a logger that collects lines and a
// clock the test moves (blocked-log.test.ts covers the kinds and shares the firewall uses).
import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger } from "./log.ts";
import { AGENT_SHARE_RATE, createAgentLines } from "./log-limit.ts";

function setup(rate = { burst: 3, perSecond: 1 }) {
  let t = Date.parse("2026-01-01T00:00:00Z");
  const lines: string[] = [];
  const log = createLogger({ level: "info", write: (s) => void lines.push(s.trimEnd()) });
  const said = createAgentLines({ log, what: "warnings about requests", rate, windowMs: 60_000, now: () => t });
  return { lines, said, advance: (ms: number) => void (t += ms) };
}

test("a line's first is said at once at its level, its repeats in one line with the count; a key makes lines alike that differ", () => {
  const { lines, said, advance } = setup();
  for (let i = 0; i < 500; i++) said.warn("upstream down.test: connect ECONNREFUSED 127.0.0.1:9");
  for (let i = 0; i < 3; i++) said.info(`session s${i} closed: 32 sessions are open and a new one started`, "closed for room");
  said.error("GET /x: boom", "GET boom");
  assert.deepEqual(lines, [
    "warning: upstream down.test: connect ECONNREFUSED 127.0.0.1:9",
    "session s0 closed: 32 sessions are open and a new one started",
    "error: GET /x: boom",
  ]);
  advance(4000);
  said.close();
  assert.deepEqual(lines.slice(3), [
    "warning: upstream down.test: connect ECONNREFUSED 127.0.0.1:9 (499 more like it in the last 4 s)",
    "session s0 closed: 32 sessions are open and a new one started (2 more like it in the last 4 s)",
  ]);
});

test("lines unlike those logged, past the budget, are counted in one line a window; the budget refills", () => {
  const { lines, said, advance } = setup();
  for (let i = 0; i < 1000; i++) said.warn(`refused: repository made-up-${i} is not declared`);
  advance(2000);
  said.warn("refused: repository after-the-flood is not declared");
  said.close();
  assert.deepEqual(lines, [
    "warning: refused: repository made-up-0 is not declared",
    "warning: refused: repository made-up-1 is not declared",
    "warning: refused: repository made-up-2 is not declared",
    "warning: refused: repository after-the-flood is not declared",
    "warning: 997 more warnings about requests in the last 2 s, not logged: too many different ones at once",
  ]);
});

test("a long line from the agent is held by a cut key: two that differ past the cut are counted as one", () => {
  const { lines, said } = setup();
  const long = "x".repeat(5000);
  said.warn(`CONNECT needs host:port, got ${long}a`);
  said.warn(`CONNECT needs host:port, got ${long}b`);
  said.close();
  assert.equal(lines.length, 2);
  assert.match(lines[1]!, /^warning: CONNECT needs host:port, got x+… \(1 more like it in the last 1 s\)$/);
  assert.ok(lines[1]!.length < 700);
});

test("lines named under one share (a wildcard's made-up subdomains) take at most its part of the budget: another share's first line still gets out", () => {
  let t = Date.parse("2026-01-01T00:00:00Z");
  const lines: string[] = [];
  const log = createLogger({ level: "info", write: (s) => void lines.push(s.trimEnd()) });
  const said = createAgentLines({ log, what: "warnings about requests", windowMs: 60_000, now: () => t });
  for (let i = 0; i < 1000; i++) said.warn(`cannot reach upstream http://h${i}.x.test: ECONNREFUSED`, undefined, "x.test");
  for (let i = 0; i < 1000; i++) said.warn(`cannot reach upstream http://h${i}.y.test: ECONNREFUSED`, undefined, "y.test");
  said.warn("cannot reach upstream http://other.test: ECONNREFUSED", undefined, "other.test");
  said.warn("a line of no share");
  t += 2000;
  said.close();
  const firsts = (re: RegExp) => lines.filter((l) => re.test(l)).length;
  assert.equal(firsts(/^warning: cannot reach upstream http:\/\/h\d+\.x\.test/), AGENT_SHARE_RATE.burst);
  assert.equal(firsts(/^warning: cannot reach upstream http:\/\/h\d+\.y\.test/), AGENT_SHARE_RATE.burst);
  assert.ok(lines.includes("warning: cannot reach upstream http://other.test: ECONNREFUSED"), lines.join("\n"));
  assert.ok(lines.includes("warning: a line of no share"));
  assert.equal(lines.at(-1), `warning: ${2000 - 2 * AGENT_SHARE_RATE.burst} more warnings about requests in the last 2 s, not logged: too many different ones at once`);
});
