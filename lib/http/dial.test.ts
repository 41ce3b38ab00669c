// tcpDial() against a port on 127.0.0.1 whose connects hang (tests/support/unaccepting-listener.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { skipWhen } from "../../tests/support/skip.ts";
import { NO_HANGING_CONNECT, startUnacceptingListener } from "../../tests/support/unaccepting-listener.ts";
import { tcpDial } from "./dial.ts";

test("tcpDial() to a port that never accepts gives up after timeoutMs with ETIMEDOUT", skipWhen(NO_HANGING_CONNECT, "tcpDial timeout"), async (t) => {
  const stuck = await startUnacceptingListener();
  t.after(() => stuck.close());
  const started = Date.now();
  await assert.rejects(tcpDial({ host: "127.0.0.1", port: stuck.port }, { timeoutMs: 300 }), (e: NodeJS.ErrnoException) => {
    assert.equal(e.code, "ETIMEDOUT");
    assert.equal(e.message, "connect timed out after 0.3s");
    return true;
  });
  assert.ok(Date.now() - started >= 290, "gave up before its deadline");
});
