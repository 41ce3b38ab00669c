import assert from "node:assert/strict";
import { test } from "node:test";
import { boundedCallMs } from "./cmd.ts";

test("BB_DOCKER_TIMEOUT: seconds, fractions allowed, 60 when unset; anything else is a usage error naming it", () => {
  assert.equal(boundedCallMs({}), 60_000);
  assert.equal(boundedCallMs({ BB_DOCKER_TIMEOUT: "" }), 60_000);
  assert.equal(boundedCallMs({ BB_DOCKER_TIMEOUT: "2.5" }), 2_500);
  assert.equal(boundedCallMs({ BB_DOCKER_TIMEOUT: "600" }), 600_000);
  for (const bad of ["0", "-1", "1e3", "ten", "5s", "0x10"]) {
    assert.throws(() => boundedCallMs({ BB_DOCKER_TIMEOUT: bad }), (e: Error & { code?: string }) => e.code === "USAGE" && e.message.startsWith(`BB_DOCKER_TIMEOUT=${bad}: `), bad);
  }
});
