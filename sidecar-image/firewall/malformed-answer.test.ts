// An answer the firewall's hop client cannot parse, from an origin the firewall dials
// itself and from its next hop: the agent's 502 blames the peer that sent it, since the
// same client (lib/http/hop-client.ts) talks to both.
import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import { createLogger } from "../../lib/log.ts";
import { mintCa } from "../../lib/tls/mod.ts";
import { plainVia } from "../../tests/support/raw-http.ts";
import { firewallPool, policyOf } from "./test-harness.ts";

const ca = await mintCa({ commonName: "test bottle CA" });

for (const [hop, peer] of [["the host itself", "the upstream"], ["its next hop", "the next hop"]] as const) {
  test(`a malformed status line from ${hop} is a 502 that says ${peer} sent it`, async () => {
    const c = await throughFirewall(hop);
    const res = await c.request("GET", "http://odd.test/", { host: "odd.test" });
    assert.equal(res.status, 502);
    assert.match(res.body, new RegExp(`cannot reach odd\\.test: ${peer} sent malformed status line "HTTP\\/1\\.1 20 OK"`));
    c.socket.destroy();
  });
}

/** A firewall in front of a server that answers every request with a status line of two digits. */
async function throughFirewall(hop: "the host itself" | "its next hop") {
  const server = net.createServer((s) => s.once("data", () => s.end("HTTP/1.1 20 OK\r\ncontent-length: 0\r\n\r\n")));
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const endpoint = { host: "127.0.0.1", port: (server.address() as net.AddressInfo).port };
  const closeServer = { close: () => new Promise<void>((ok) => server.close(() => ok())) };
  const startFirewall = firewallPool(
    {
      policy: policyOf(["odd.test"]),
      ca,
      log: createLogger({ level: "info", write: () => {} }),
      ...(hop === "its next hop" ? { nextHop: endpoint } : { resolve: new Map([["odd.test", endpoint]]) }),
    },
    [closeServer],
  );
  return await plainVia(await startFirewall());
}
