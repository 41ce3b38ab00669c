import assert from "node:assert/strict";
import { test } from "node:test";
import { relayStatus } from "./status.ts";

test("relayStatus() keeps codes 100-599 with the standard phrase and refuses the rest", () => {
  assert.deepEqual(relayStatus(200), { code: 200, phrase: "OK" });
  assert.deepEqual(relayStatus(599), { code: 599, phrase: "" });
  for (const bad of [undefined, 0, 99, 600, 999, 200.5]) assert.equal(relayStatus(bad), null, String(bad));
});
