// egress against an upstream that closes each pooled connection as the next request
// arrives on it (the race a keep-alive idle timeout makes, staged on cue): a request that
// is safe to send again goes again on a fresh connection, one that is not gets its 502.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type net from "node:net";
import { test } from "node:test";
import { createLogger } from "../../lib/log.ts";
import { mintCa, mintLeaf } from "../../lib/tls/mod.ts";
import { startIdleClosingServer } from "../../tests/support/idle-closing-server.ts";
import { plainVia } from "../../tests/support/raw-http.ts";
import { createEgress } from "./server.ts";

test("a pooled upstream connection closed under a request: a GET or a keyed POST goes again on a fresh one, a plain POST gets its 502", async (t) => {
  const upstream = await startIdleClosingServer();
  const lines: string[] = [];
  const egress = createEgress({
    routes: { version: 1, routes: [] },
    resolve: new Map([["flaky.test", { host: "127.0.0.1", port: upstream.port }]]),
    log: createLogger({ level: "info", write: (l) => void lines.push(l) }),
  });
  await new Promise<void>((r) => egress.server.listen(0, "127.0.0.1", r));
  t.after(async () => {
    await egress.close();
    await upstream.close();
  });
  const c = await plainVia((egress.server.address() as net.AddressInfo).port);
  const get = (path: string) => c.request("GET", `http://flaky.test${path}`, { host: "flaky.test" });
  const post = (path: string, headers: Record<string, string> = {}) => c.request("POST", `http://flaky.test${path}`, { host: "flaky.test", ...headers }, "payload");

  assert.equal((await get("/a")).body, "GET /a answered on connection 1");
  const again = await get("/b");
  assert.deepEqual([again.status, again.body], [200, "GET /b answered on connection 2"]);
  const refused = await post("/c");
  assert.equal(refused.status, 502);
  assert.match(refused.body, /cannot reach upstream http:\/\/flaky\.test: ECONNRESET/);
  assert.equal((await get("/e")).body, "GET /e answered on connection 3");
  const keyed = await post("/d", { "idempotency-key": "k-1" });
  assert.deepEqual([keyed.status, keyed.body], [200, "POST /d answered on connection 4"]);
  // A body egress keeps no copy of (over 1 MiB) cannot go again, keyed or not.
  assert.equal((await get("/f")).body, "GET /f answered on connection 5");
  const big = await c.request("POST", "http://flaky.test/g", { host: "flaky.test", "idempotency-key": "k-2" }, Buffer.alloc(2 * 1024 * 1024, "x"));
  assert.equal(big.status, 502);
  assert.deepEqual(upstream.arrived, ["GET /a", "GET /b", "GET /b", "POST /c", "GET /e", "POST /d", "POST /d", "GET /f", "GET /f", "POST /g"]);
  // The two failures are alike: the first is logged, the second counted (lib/log-limit.ts).
  assert.equal(lines.filter((l) => /cannot reach upstream/.test(l)).length, 1, lines.join("\n"));
  c.socket.destroy();
});

test("a routed HTTPS host: the GET sent again carries the real credential, as the first did, and never the placeholder", async (t) => {
  const ca = await mintCa({ commonName: "test upstream CA" });
  const upstream = await startIdleClosingServer({ tls: await mintLeaf({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, hosts: ["api.flaky.test"] }) });
  const egress = createEgress({
    routes: { version: 1, routes: [{ host: "api.flaky.test", auth: "bearer", header: null, slot: "EGRESS_TOKEN_0" }] },
    env: { EGRESS_TOKEN_0: "real-token-for-the-retry" },
    extraCa: [ca.certPem],
    resolve: new Map([["api.flaky.test", { host: "127.0.0.1", port: upstream.port }]]),
    log: createLogger({ level: "warn", write: () => {} }),
  });
  await new Promise<void>((r) => egress.server.listen(0, "127.0.0.1", r));
  t.after(async () => {
    await egress.close();
    await upstream.close();
  });
  const c = await plainVia((egress.server.address() as net.AddressInfo).port);
  const get = (path: string) => c.request("GET", `https://api.flaky.test${path}`, { host: "api.flaky.test", authorization: "Bearer PLACEHOLDER" });
  assert.equal((await get("/a")).body, "GET /a answered on connection 1");
  const again = await get("/b");
  assert.deepEqual([again.status, again.body], [200, "GET /b answered on connection 2"]);
  assert.deepEqual(upstream.arrived, ["GET /a", "GET /b", "GET /b"]);
  for (const head of upstream.heads) {
    assert.match(head, /\r\nauthorization: bearer real-token-for-the-retry\r\n/);
    assert.doesNotMatch(head, /placeholder/);
  }
  c.socket.destroy();
});
