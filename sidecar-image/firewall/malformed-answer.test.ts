// Answers the proxies' hop client (lib/http/hop-client.ts) cannot parse or relay, from a
// fake upstream on 127.0.0.1, as the agent receives them: from the firewall dialing the
// host itself, from the firewall whose next hop sent it, from the firewall with a real
// egress behind it, and from egress alone. The 502's text is a sentence that says who sent
// what; egress's says it in words, not as the parser's code. A Transfer-Encoding other
// than plain chunked is refused alike with and without egress (lib/http/body-framing.ts).
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { after, test } from "node:test";
import zlib from "node:zlib";
import { createLogger } from "../../lib/log.ts";
import { mintCa } from "../../lib/tls/mod.ts";
import { createEgress } from "../egress/server.ts";
import { WS_UPGRADE } from "../../tests/support/deadline-upstreams.ts";
import { plainVia, proxyRequestOnce } from "../../tests/support/raw-http.ts";
import { firewallPool, policyOf } from "./test-harness.ts";

const ca = await mintCa({ commonName: "test bottle CA" });
const quiet = createLogger({ level: "info", write: () => {} });
const gz = zlib.gzipSync("hello");

/** What the fake upstream answers, by path: a head no proxy may pass on. */
const ANSWERS: Record<string, Buffer> = {
  "/status": Buffer.from("HTTP/1.1 20 OK\r\ncontent-length: 0\r\n\r\n"),
  // No length: the body runs to the close, a coding on it the agent's client does not undo.
  "/te-gzip": Buffer.concat([Buffer.from("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n"), gz]),
  "/te-gzip-chunked": Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n${gz.length.toString(16)}\r\n`), gz, Buffer.from("\r\n0\r\n\r\n")]),
};

const upstream = net.createServer((s) =>
  s.once("data", (d: Buffer) => {
    const path = / (\S+) HTTP/.exec(d.toString("latin1"))?.[1]?.replace(/^http:\/\/[^/]+/, "") ?? "";
    s.end(ANSWERS[path] ?? "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
  }),
);
upstream.on("connection", (s) => s.on("error", () => s.destroy()));
await new Promise<void>((ok) => upstream.listen(0, "127.0.0.1", ok));
const endpoint = { host: "127.0.0.1", port: (upstream.address() as net.AddressInfo).port };

const egress = createEgress({ routes: { version: 1, routes: [] }, resolve: new Map([["odd.test", endpoint]]), log: quiet });
await new Promise<void>((ok) => egress.server.listen(0, "127.0.0.1", ok));
const egressPort = (egress.server.address() as net.AddressInfo).port;
after(() => egress.close());

const startFirewall = firewallPool({ policy: policyOf(["odd.test"]), ca, log: quiet }, [{ close: () => new Promise<void>((ok) => upstream.close(() => ok())) }]);
const direct = await startFirewall({ resolve: new Map([["odd.test", endpoint]]) });
// The upstream put where egress would be: its answer is then the next hop's.
const fakeHop = await startFirewall({ nextHop: endpoint });
const viaEgress = await startFirewall({ nextHop: { host: "127.0.0.1", port: egressPort } });

async function ask(port: number, path: string) {
  const c = await plainVia(port);
  try {
    return await c.request("GET", `http://odd.test${path}`, { host: "odd.test" });
  } finally {
    c.socket.destroy();
  }
}

const quote = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
const whole = (text: string) => new RegExp(`^${quote(text)}\\n$`);

test("a malformed status line is a 502 whose text says who sent it, with the article, from each proxy", async () => {
  const line = '"HTTP/1.1 20 OK"';
  assert.match((await ask(direct, "/status")).body, whole(`bot-bottle firewall: cannot reach odd.test: the upstream sent a malformed status line ${line}`));
  assert.match((await ask(fakeHop, "/status")).body, whole(`bot-bottle firewall: cannot reach odd.test: the next hop sent a malformed status line ${line}`));
  for (const res of [await ask(viaEgress, "/status"), await proxyRequestOnce(egressPort, "GET", "http://odd.test/status", { host: "odd.test" })]) {
    assert.equal(res.status, 502);
    assert.match(res.body, whole(`egress: http://odd.test sent a malformed status line ${line}`), "egress's 502 says what was wrong, not the parser's code");
  }
  // An upgrade goes through node's client, whose parser says what in its own words.
  const upgrade = await proxyRequestOnce(egressPort, "GET", "http://odd.test/status", { host: "odd.test", ...WS_UPGRADE });
  assert.equal(upgrade.status, 502);
  assert.match(upgrade.body, /^egress: http:\/\/odd\.test sent an answer egress cannot parse: Parse Error: \w/, "egress's 502 to an upgrade says what was wrong, not the parser's code");
});

for (const [path, coding] of [["/te-gzip", "gzip"], ["/te-gzip-chunked", "gzip, chunked"]]) {
  test(`Transfer-Encoding: ${coding} is refused with a 502 naming it, by the firewall dialing itself and by egress behind it`, async () => {
    const d = await ask(direct, path);
    assert.equal(d.status, 502, d.body);
    assert.match(d.body, whole(`bot-bottle firewall: cannot reach odd.test: the upstream sent an unsupported transfer-encoding "${coding}"`));
    // egress refuses it itself, naming the host, rather than passing on what the firewall
    // would refuse as the next hop's fault (or, for "gzip" alone, with no end marked at all).
    const e = await ask(viaEgress, path);
    assert.equal(e.status, 502, e.body);
    assert.match(e.body, whole(`egress: http://odd.test sent an unsupported transfer-encoding "${coding}"`));
  });
}
