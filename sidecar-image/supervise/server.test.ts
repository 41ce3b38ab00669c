// The MCP handler on a real HTTP server with real SDK clients and raw sockets: an agent
// that opens session after session, sends bodies that never end, or keeps calls waiting
// cannot grow what the daemon holds past its bounds.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import process from "node:process";
import type { AddressInfo } from "node:net";
import { test, type TestContext } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { makeTestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { createRequestBook, type RequestBookOptions } from "./requests.ts";
import { createSuperviseHandler, MCP_PATH, type SuperviseHandlerOptions } from "./server.ts";
import { INIT, MCP_HEADERS, rawRequest, until } from "./testdata/raw-http.ts";

/** A bottle's queue, a book and the handler on 127.0.0.1; all closed when the test ends. */
async function serve(t: TestContext, opts: Partial<SuperviseHandlerOptions> = {}, bookOpts: Partial<RequestBookOptions> = {}) {
  const bottle = await makeTestBottle();
  t.after(() => bottle.remove());
  const book = createRequestBook({ queueDir: bottle.queueDir, waitMs: 0, pollMs: 10, ...bookOpts });
  const supervise = createSuperviseHandler({ slug: bottle.slug, book, allowedHosts: ["127.0.0.1"], ...opts });
  const server = createServer(supervise.handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(async () => {
    await supervise.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const port = (server.address() as AddressInfo).port;
  const url = new URL(`http://127.0.0.1:${port}${opts.agentKey ? `/${opts.agentKey}` : ""}${MCP_PATH}`);
  const connect = async () => {
    const c = new Client({ name: "server-test", version: "1.0.0" });
    const transport = new StreamableHTTPClientTransport(url);
    await c.connect(transport);
    t.after(() => c.close().catch(() => {}));
    return { client: c, sessionId: transport.sessionId! };
  };
  return { bottle, book, supervise, port, url, connect };
}

test("past maxSessions the least recently used session is closed; the others keep working", async (t) => {
  const { supervise, connect } = await serve(t, { maxSessions: 2 });
  const open = async () => (await connect()).client;

  const first = await open();
  const second = await open();
  await first.listTools(); // first is now the more recently used of the two
  const third = await open();
  assert.equal(supervise.sessionCount(), 2);
  assert.equal((await first.listTools()).tools.length, 3, "the session used last before the third was kept");
  assert.equal((await third.listTools()).tools.length, 3);
  await assert.rejects(second.listTools(), /404|Session not found/, "the least recently used session was closed");
});

test("a body over maxBodyBytes is refused 413, whether Content-Length says so or the body runs past it, at initialize and in a session; the session keeps working", async (t) => {
  const { port, url, connect } = await serve(t, { maxBodyBytes: 4096 });
  const padded = (bytes: number) => JSON.stringify(INIT) + " ".repeat(bytes);
  const said = await fetch(url, { method: "POST", headers: MCP_HEADERS, body: padded(5000) });
  assert.equal(said.status, 413);
  assert.match(((await said.json()) as { error: { message: string } }).error.message, /must not exceed 4096 bytes/);
  // Chunked, no length said: refused once 4096 bytes have come, the rest never read.
  const sent = rawRequest(t, port, { "transfer-encoding": "chunked" }, `1000\r\n${" ".repeat(0x1000)}\r\n10\r\n${" ".repeat(16)}\r\n`);
  assert.equal(await sent.status(), 413);

  const { client, sessionId } = await connect();
  const inSession = { ...MCP_HEADERS, "mcp-session-id": sessionId, "mcp-protocol-version": "2025-06-18" };
  const call = { jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: "check_request", arguments: { id: "x".repeat(5000) } } };
  const big = await fetch(url, { method: "POST", headers: inSession, body: JSON.stringify(call) });
  assert.equal(big.status, 413);
  await big.body?.cancel();
  const unsaid = rawRequest(t, port, { ...inSession, "transfer-encoding": "chunked" }, `1400\r\n${" ".repeat(0x1400)}\r\n`);
  assert.equal(await unsaid.status(), 413);
  assert.equal((await client.listTools()).tools.length, 3);
});

test("past maxRequests requests in flight the next is refused 503 before its body is read; one that ends frees its place", async (t) => {
  const { supervise, port, url } = await serve(t, { maxRequests: 3 });
  // Initialize bodies that never finish: each request stays in the handler, reading.
  const held = [0, 1, 2].map(() => rawRequest(t, port, { "content-length": 1000, expect: "100-continue" }, "{"));
  for (const r of held) await r.taken();
  await until(supervise.requestCount, 3, "three requests in flight");
  const refused = await fetch(url, { method: "POST", headers: MCP_HEADERS, body: JSON.stringify(INIT) });
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get("connection"), "close");
  assert.match(((await refused.json()) as { error: { message: string } }).error.message, /answering 3 requests already \(at most 3 at once\)/);
  const alsoRefused = rawRequest(t, port, { "content-length": 1000, expect: "100-continue" }, "{");
  assert.equal(await alsoRefused.status(), 503);

  held[0]!.socket.destroy();
  await until(supervise.requestCount, 2, "the closed request no longer counts");
  const served = await fetch(url, { method: "POST", headers: MCP_HEADERS, body: JSON.stringify(INIT) });
  assert.equal(served.status, 200);
  await served.body?.cancel();
});

test("a tool call past the session's cap on waiting calls is a tool error that points at check_request; the session's other calls go on", async (t) => {
  const { book, connect } = await serve(t, {}, { waitMs: 30_000, maxWaitingPerSession: 1 });
  const { client } = await connect();
  const ac = new AbortController();
  const waiting = client.callTool({ name: "ask_operator", arguments: { question: "which branch?" } }, undefined, { signal: ac.signal });
  waiting.catch(() => {});
  await until(book.callsInFlight, 1, "the first call is waiting");
  const refused = (await client.callTool({ name: "request_host_access", arguments: { host: "docs.example.org", reason: "r" } })) as CallToolResult;
  assert.equal(refused.isError, true);
  assert.match(refused.content.map((c) => (c.type === "text" ? c.text : "")).join(""), /^This session has 1 call waiting for the operator already \(at most 1 at once\): call check_request/);
  const checked = (await client.callTool({ name: "check_request", arguments: { id: "ffffffff" } })) as CallToolResult;
  assert.match(JSON.stringify(checked.content), /No request with id/, "check_request is no waiting call");
  // Another session has a cap of its own.
  const other = (await connect()).client;
  const ac2 = new AbortController();
  other.callTool({ name: "ask_operator", arguments: { question: "and you?" } }, undefined, { signal: ac2.signal }).catch(() => {});
  await until(book.callsInFlight, 2, "the other session's call is waiting too");
  ac.abort();
  ac2.abort();
  await until(book.callsInFlight, 0, "a cancelled call ends");
});

test("with an agent key, MCP is served only at /KEY/mcp: /mcp and another key get a 404 that names no path", async (t) => {
  const key = "0123456789abcdef".repeat(3);
  const { port, connect } = await serve(t, { agentKey: key });
  for (const path of [MCP_PATH, `/${key.slice(0, -1)}0${MCP_PATH}`, `/${key}`, `/${key}${MCP_PATH}/x`]) {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, { method: "POST", headers: MCP_HEADERS, body: JSON.stringify(INIT) });
    assert.equal(r.status, 404, path);
    assert.equal(await r.text(), "not found\n", path);
  }
  const { client } = await connect();
  assert.equal((await client.listTools()).tools.length, 3, "the agent, with the key in its URL, is served");
});

test("with an agent key, a request that fails inside the handler is logged with its path, the key left out (the bundle's log is docker's)", async (t) => {
  const key = "0123456789abcdef".repeat(3);
  const { supervise } = await serve(t, { agentKey: key });
  const said: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => (said.push(String(s)), true)) as typeof process.stderr.write;
  let ended!: () => void;
  const done = new Promise<void>((r) => (ended = r));
  try {
    // A request whose headers cannot be read: what the handler's last-resort catch is for.
    const req = { method: "POST", url: `/${key}${MCP_PATH}`, get headers(): never { throw new Error("headers unreadable"); } };
    const res = { headersSent: false, once: () => res, writeHead: () => res, end: () => ended() };
    supervise.handler(req as unknown as IncomingMessage, res as unknown as ServerResponse);
    await done;
  } finally {
    process.stderr.write = write;
  }
  const line = said.join("");
  assert.match(line, new RegExp(`POST /<agent key>${MCP_PATH}: headers unreadable`));
  assert.ok(!line.includes(key), line);
});
