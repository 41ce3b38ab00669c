// The firewall against a server that closes each pooled connection as the next request
// arrives on it (the race a keep-alive idle timeout makes, staged on cue), both where the
// firewall dials the host itself and where it hands requests to its next hop (egress,
// whose idle timeout is the one that matters in a bottle). The firewall holds each body
// whole, so any replayable request, keyed POSTs too, goes again on a fresh connection.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createLogger } from "../../lib/log.ts";
import { mintCa } from "../../lib/tls/mod.ts";
import { startIdleClosingServer } from "../../tests/support/idle-closing-server.ts";
import { plainVia } from "../../tests/support/raw-http.ts";
import { firewallPool, policyOf } from "./test-harness.ts";

const ca = await mintCa({ commonName: "test bottle CA" });

for (const hop of ["the host itself", "its next hop"] as const) {
  // Both are reached through lib/http/hop-client.ts, not node:http, so both run under deno
  // too (where node:http quietly sent the plain POST a second time).
  test(`a pooled connection to ${hop} closed under a request: a GET or a keyed POST goes again on a fresh one, a plain POST gets its 502`, async () => {
    const { server, c, lines } = await throughFirewall(hop);
    // The server names each request by its request line: absolute-form to a next hop.
    const line = (method: string, path: string) => `${method} ${hop === "its next hop" ? `http://flaky.test${path}` : path}`;
    const get = (path: string) => c.request("GET", `http://flaky.test${path}`, { host: "flaky.test" });
    const post = (path: string, headers: Record<string, string> = {}) => c.request("POST", `http://flaky.test${path}`, { host: "flaky.test", ...headers }, "payload");

    assert.equal((await get("/a")).body, `${line("GET", "/a")} answered on connection 1`);
    const again = await get("/b");
    assert.deepEqual([again.status, again.body], [200, `${line("GET", "/b")} answered on connection 2`]);
    const refused = await post("/c");
    assert.equal(refused.status, 502);
    assert.match(refused.body, /cannot reach flaky\.test: socket hang up/);
    assert.equal((await get("/e")).body, `${line("GET", "/e")} answered on connection 3`);
    const keyed = await post("/d", { "idempotency-key": "k-1" });
    assert.deepEqual([keyed.status, keyed.body], [200, `${line("POST", "/d")} answered on connection 4`]);
    assert.deepEqual(server.arrived, [line("GET", "/a"), line("GET", "/b"), line("GET", "/b"), line("POST", "/c"), line("GET", "/e"), line("POST", "/d"), line("POST", "/d")]);
    assert.equal(lines.filter((l) => /upstream flaky\.test: socket hang up/.test(l)).length, 1, lines.join("\n"));
    c.socket.destroy();
  });

  test(`a pooled connection to ${hop} the server closed while idle: the next GET goes on a fresh one`, async () => {
    const { server, c, lines } = await throughFirewall(hop);
    const target = hop === "its next hop" ? "http://flaky.test" : "";
    assert.equal((await c.request("GET", "http://flaky.test/a", { host: "flaky.test" })).body, `GET ${target}/a answered on connection 1`);
    await server.closeIdle();
    const next = await c.request("GET", "http://flaky.test/b", { host: "flaky.test" });
    assert.deepEqual([next.status, next.body], [200, `GET ${target}/b answered on connection 2`]);
    assert.equal(server.connections(), 2);
    assert.deepEqual(lines.filter((l) => /upstream flaky\.test/.test(l)), []);
    c.socket.destroy();
  });
}

/** The idle-closing server behind a firewall that dials it itself or takes it for its next hop. */
async function throughFirewall(hop: "the host itself" | "its next hop") {
  const server = await startIdleClosingServer();
  const lines: string[] = [];
  const endpoint = { host: "127.0.0.1", port: server.port };
  const startFirewall = firewallPool(
    {
      policy: policyOf(["flaky.test"]),
      ca,
      log: createLogger({ level: "info", write: (l) => void lines.push(l) }),
      ...(hop === "its next hop" ? { nextHop: endpoint } : { resolve: new Map([["flaky.test", endpoint]]) }),
    },
    [server],
  );
  return { server, lines, c: await plainVia(await startFirewall()) };
}
