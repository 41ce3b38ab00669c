import assert from "node:assert/strict";
import { it } from "node:test";
import { percentile, summarize } from "./stats.ts";

it("percentile() is nearest-rank: p50 of 1..10 is 5, p99 is the maximum, an empty list is NaN", () => {
  const xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  assert.equal(percentile(xs, 0.5), 5);
  assert.equal(percentile(xs, 0.99), 10);
  assert.equal(percentile(xs, 0), 1);
  assert.ok(Number.isNaN(percentile([], 0.5)));
});

it("summarize() sorts the latencies itself and divides the count by the window", () => {
  const s = summarize([3, 1, 2, 4], 2);
  assert.deepEqual(s, { requests: 4, seconds: 2, rps: 2, p50Ms: 2, p99Ms: 4 });
});
