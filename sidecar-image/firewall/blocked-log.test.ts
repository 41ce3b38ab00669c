// The firewall's "blocked" lines under a flood, in-process: a logger that collects lines,
// a clock the test moves, and a short window whose timer is real.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger } from "../../lib/log.ts";
import { createBlockedLog, MAX_COUNT_LINES } from "./blocked-log.ts";
import type { Refusal } from "./blocked.ts";

const WINDOW = 40;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setup(rates: Parameters<typeof createBlockedLog>[0]["rates"] = {}) {
  let t = Date.parse("2026-01-01T00:00:00Z");
  const lines: string[] = [];
  const log = createLogger({ level: "info", write: (s) => void lines.push(s.trimEnd()) });
  const blocked = createBlockedLog({ log, windowMs: WINDOW, rates, now: () => t });
  const add = (r: Refusal) => blocked.add(r, `blocked ${r.what} ${r.host}: ${r.reason}`);
  return { lines, blocked, add, advance: (ms: number) => void (t += ms) };
}
const notAllowed = (host: string): Refusal => ({ what: "GET", host, reason: "host is not in this bottle's allowlist" });
const secret = (host: string, under: string): Refusal => ({ what: "POST", host, reason: "detector aws matched in body (AWS access key id: AKIA…)", under });

test("a key's first refusal is logged at once, its repeats in one line after the window, with no close needed; a key quiet for a window is logged anew", async () => {
  const { lines, blocked, add, advance } = setup();
  for (let i = 0; i < 5; i++) add(notAllowed("evil.test"));
  assert.deepEqual(lines, ["warning: blocked GET evil.test: host is not in this bottle's allowlist"]);
  advance(3000);
  await sleep(WINDOW * 3);
  assert.deepEqual(lines.slice(1), ["warning: blocked evil.test (not allowed): 4 more like it in the last 3 s"]);
  // Quiet for a whole window: forgotten, so its next refusal is a first again.
  advance(60_000);
  await sleep(WINDOW * 3);
  add(notAllowed("evil.test"));
  add(notAllowed("evil.test"));
  blocked.close(); // exit says what is pending
  assert.deepEqual(lines.slice(2), ["warning: blocked GET evil.test: host is not in this bottle's allowlist", "warning: blocked evil.test (not allowed): 1 more like it in the last 1 s"]);
});

test("made-up names past the gate's lines are counted in one line, and take none of the lines a secret's refusal needs; one wildcard's subdomains take none of another allowed host's", () => {
  const { lines, blocked, add, advance } = setup({ gate: { burst: 3, perSecond: 1 }, content: { burst: 10, perSecond: 1 }, perRule: { burst: 2, perSecond: 1 } });
  for (let i = 0; i < 1000; i++) add(notAllowed(`n${i}.flood.test`));
  for (let i = 0; i < 50; i++) add(secret(`x${i}.wild.test`, "*.wild.test"));
  add(secret("api.example.test", "api.example.test"));
  advance(2000); // two more gate lines a second
  for (let i = 1000; i < 1010; i++) add(notAllowed(`n${i}.flood.test`));
  blocked.close();
  assert.deepEqual(lines.map((l) => /blocked \w+ (\S+):/.exec(l)?.[1] ?? l), [
    "n0.flood.test", "n1.flood.test", "n2.flood.test",
    "x0.wild.test", "x1.wild.test",
    "api.example.test",
    "n1000.flood.test", "n1001.flood.test",
    "warning: blocked 1053 more refusals in the last 2 s, not logged one by one (48 sent to allowed hosts, 1005 to hosts or ports not allowed): the firewall's record counts them (bb-supervise blocked)",
  ]);
});

test("count lines are bounded per window, secrets' first; the counts past them go into the window's last line", () => {
  const { lines, blocked, add } = setup();
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < MAX_COUNT_LINES + 5; i++) add(notAllowed(`h${i}.test`));
    add(secret("api.example.test", "api.example.test"));
  }
  lines.length = 0;
  blocked.close();
  assert.equal(lines.length, MAX_COUNT_LINES + 1, lines.join("\n"));
  assert.equal(lines[0], "warning: blocked api.example.test (dlp aws): 1 more like it in the last 1 s");
  assert.equal(lines.at(-1), "warning: blocked 6 more refusals in the last 1 s, not logged one by one (6 to hosts or ports not allowed): the firewall's record counts them (bb-supervise blocked)");
});

test("repeats of one host and rule for other reasons say how many other reasons there were, up to a bound", () => {
  const { lines, blocked, add } = setup();
  const found = (what: string): Refusal => ({ what: "POST", host: "api.example.test", reason: `detector aws matched in ${what} (AWS access key id: AKIA…)`, under: "api.example.test" });
  for (let i = 0; i < 3; i++) add(found("body"));
  add(found("query"));
  add(found("header x-a"));
  add(found("query"));
  for (let i = 0; i < 30; i++) add(found(`header x-${i}`));
  add(notAllowed("evil.test"));
  add(notAllowed("evil.test"));
  blocked.close();
  assert.deepEqual(lines.slice(2), [
    "warning: blocked api.example.test (dlp aws): 35 more like it in the last 1 s, 10 or more other reasons among them",
    "warning: blocked evil.test (not allowed): 1 more like it in the last 1 s",
  ]);
});

test("repeats with one other reason say so in the singular", () => {
  const { lines, blocked, add } = setup();
  add(secret("a.example.test", "*.example.test"));
  add({ ...secret("a.example.test", "*.example.test"), reason: "detector aws matched in query (AWS access key id: AKIA…)" });
  add(secret("a.example.test", "*.example.test"));
  blocked.close();
  assert.deepEqual(lines.slice(1), ["warning: blocked a.example.test (dlp aws): 2 more like it in the last 1 s, 1 other reason among them"]);
});
