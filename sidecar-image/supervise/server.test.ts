// The MCP handler's session table on a real HTTP server and real SDK clients: an agent
// that opens session after session cannot grow it past its bound.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { makeTestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { createRequestBook } from "./requests.ts";
import { createSuperviseHandler, MCP_PATH } from "./server.ts";

test("past maxSessions the least recently used session is closed; the others keep working", async (t) => {
  const bottle = await makeTestBottle();
  t.after(() => bottle.remove());
  const supervise = createSuperviseHandler({ slug: bottle.slug, book: createRequestBook({ queueDir: bottle.queueDir, waitMs: 0, pollMs: 10 }), maxSessions: 2 });
  const server = createServer(supervise.handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(async () => {
    await supervise.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}${MCP_PATH}`);
  const connect = async () => {
    const c = new Client({ name: "session-test", version: "1.0.0" });
    await c.connect(new StreamableHTTPClientTransport(url));
    t.after(() => c.close().catch(() => {}));
    return c;
  };

  const first = await connect();
  const second = await connect();
  await first.listTools(); // first is now the more recently used of the two
  const third = await connect();
  assert.equal(supervise.sessionCount(), 2);
  assert.equal((await first.listTools()).tools.length, 3, "the session used last before the third was kept");
  assert.equal((await third.listTools()).tools.length, 3);
  await assert.rejects(second.listTools(), /404|Session not found/, "the least recently used session was closed");
});
