import assert from "node:assert/strict";
import { test } from "node:test";
import { replayable } from "./retry.ts";

test("replayable: GET, HEAD, OPTIONS and TRACE in any case, or any method with an idempotency key; never a plain POST, PUT, PATCH or DELETE", () => {
  for (const m of ["GET", "get", "HEAD", "OPTIONS", "TRACE", undefined]) assert.equal(replayable(m, {}), true, String(m));
  for (const m of ["POST", "PUT", "PATCH", "DELETE"]) {
    assert.equal(replayable(m, {}), false, m);
    assert.equal(replayable(m, { "idempotency-key": "k" }), true, m);
    assert.equal(replayable(m, { "x-idempotency-key": "k" }), true, m);
  }
});
