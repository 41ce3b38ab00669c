import assert from "node:assert/strict";
import { test } from "node:test";
import { BbError } from "../errors.ts";
import { replayable, retryOnFreshConnection } from "./retry.ts";

test("replayable: GET, HEAD, OPTIONS and TRACE in any case, or any method with an idempotency key; never a plain POST, PUT, PATCH or DELETE", () => {
  for (const m of ["GET", "get", "HEAD", "OPTIONS", "TRACE", undefined]) assert.equal(replayable(m, {}), true, String(m));
  for (const m of ["POST", "PUT", "PATCH", "DELETE"]) {
    assert.equal(replayable(m, {}), false, m);
    assert.equal(replayable(m, { "idempotency-key": "k" }), true, m);
    assert.equal(replayable(m, { "x-idempotency-key": "k" }), true, m);
  }
});

test("retryOnFreshConnection: a reset or broken pipe on a reused connection goes again; a deadline's TIMEOUT, a fresh connection or a body not at hand does not", () => {
  const reused = { reusedSocket: true };
  const errno = (code: string) => Object.assign(new Error(code), { code });
  assert.equal(retryOnFreshConnection(reused, errno("ECONNRESET"), true), true);
  assert.equal(retryOnFreshConnection(reused, errno("EPIPE"), true), true);
  assert.equal(retryOnFreshConnection(reused, new BbError("TIMEOUT", "https://x.test sent no response head within 2 s"), true), false);
  assert.equal(retryOnFreshConnection({ reusedSocket: false }, errno("ECONNRESET"), true), false);
  assert.equal(retryOnFreshConnection(reused, errno("ECONNRESET"), false), false);
});
