// The firewall as a real process dialing upstreams itself (no --next-hop: a bottle without
// credential routes runs no egress), with short deadlines (--connect-timeout 1,
// --head-timeout 2), against upstreams on 127.0.0.1 that never accept, accept and say
// nothing, or answer slowly: the first two get a 504 naming them and what did not happen
// (plain requests, intercepted HTTPS, upgrades, passthrough CONNECT), none labelled as the
// firewall's refusal, the last passes whole.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { mintCa } from "../../lib/tls/mod.ts";
import type { DaemonProcess } from "../../tests/support/daemon-process.ts";
import { startDeadlineUpstreams, WS_UPGRADE, type DeadlineUpstreams } from "../../tests/support/deadline-upstreams.ts";
import { SLOW_BODY_CHUNKS, type QuietUpstream } from "../../tests/support/quiet-upstream.ts";
import { connectTunnel, httpsVia, proxyRequestOnce, type RawResponse } from "../../tests/support/raw-http.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { NO_HANGING_CONNECT } from "../../tests/support/unaccepting-listener.ts";
import { startFirewallProcess } from "./test-harness.ts";

describe("firewall deadlines when it dials upstreams itself (real process)", skipWhen(NO_HANGING_CONNECT, "firewall deadlines"), () => {
  let upstreams: DeadlineUpstreams;
  let quiet: QuietUpstream;
  let bottleCa: string;
  let firewall: DaemonProcess;

  before(async () => {
    upstreams = await startDeadlineUpstreams();
    quiet = upstreams.quiet;
    const bottle = await mintCa({ commonName: "firewall deadlines bottle CA" });
    bottleCa = bottle.certPem;
    const hosts = ["quiet.test", "slow.test", "slow-tls.test", "stuck.test", { host: "stuck-pass.test", tlsPassthrough: true }];
    firewall = await startFirewallProcess(upstreams.dir, hosts, bottle, [
      "--upstream-ca", upstreams.caFile,
      "--connect-timeout", "1",
      "--head-timeout", "2",
      ...upstreams.resolveFlags(["stuck-pass.test"]),
    ]);
  });

  after(async () => {
    await firewall?.stop();
    await upstreams?.close();
  });

  const via = (method: string, url: string, headers: Record<string, string> = {}) => proxyRequestOnce(firewall.port, method, url, headers);

  /** One request inside an intercepted HTTPS tunnel of its own. */
  async function viaTunnel(host: string, path: string): Promise<RawResponse> {
    const conn = await httpsVia(firewall.port, host, bottleCa);
    try {
      return await conn.request("GET", path, { Host: host });
    } finally {
      conn.socket.destroy();
    }
  }

  const TIMED_OUT = (body: string) => new RegExp(`^bot-bottle firewall: ${body.replace(/[.]/g, "\\.")}\\n$`);

  it("an upstream that takes the request and never answers: 504 naming it after --head-timeout, and its connection closed", async () => {
    const res = await via("GET", "http://quiet.test/hold");
    assert.equal(res.status, 504, res.body);
    assert.equal(res.headers["x-bot-bottle-firewall"], undefined, "a timed-out request was labelled as the firewall's refusal");
    assert.equal(res.statusLine, "HTTP/1.1 504 Gateway Timeout");
    assert.match(res.body, TIMED_OUT("http://quiet.test sent no response head within 2 s"));
    await quiet.closed(quiet.arrivedOnce("GET /hold"));
  });

  it("a head timeout on a pooled keep-alive connection is not sent again on a fresh one", () => upstreams.checkPooledHeadTimeout(firewall.port));

  it("a WebSocket upgrade the upstream never answers: 504 after --head-timeout, not labelled blocked (as a plain request's is not), its connection closed", async () => {
    const res = await via("GET", "http://quiet.test/hold-ws", WS_UPGRADE);
    assert.equal(res.status, 504, res.body);
    assert.equal(res.headers["x-bot-bottle-firewall"], undefined, "a timed-out upgrade was labelled as the firewall's refusal");
    assert.match(res.body, TIMED_OUT("http://quiet.test sent no response head within 2 s"));
    await quiet.closed(quiet.arrivedOnce("GET /hold-ws"));
  });

  it("an intercepted HTTPS request to an upstream that accepts and never finishes the TLS handshake: 504 after --connect-timeout", async () => {
    const before = quiet.connections();
    const res = await viaTunnel("quiet.test", "/never-secure");
    assert.equal(res.status, 504, res.body);
    assert.match(res.body, TIMED_OUT("https://quiet.test accepted a connection but did not finish the TLS handshake within 1 s"));
    assert.equal(quiet.connections(), before + 1);
    await quiet.closed(before);
  });

  it("an upstream that never accepts the connection: 504 after --connect-timeout, for a request and an upgrade", async () => {
    for (const res of [await via("GET", "http://stuck.test/"), await via("GET", "http://stuck.test/ws", WS_UPGRADE)]) {
      assert.equal(res.status, 504, res.body);
      assert.match(res.body, TIMED_OUT("http://stuck.test did not accept a connection within 1 s"));
    }
  });

  it("a passthrough host that never accepts the connection: the CONNECT is answered 504 after --connect-timeout", async () => {
    const t = await connectTunnel(firewall.port, "stuck-pass.test:443");
    assert.ok("refused" in t, "CONNECT to a passthrough host that never accepts was answered 200");
    assert.equal(t.refused.statusLine, "HTTP/1.1 504 Gateway Timeout");
    assert.equal(t.refused.headers["x-bot-bottle-firewall"], undefined, "a timed-out tunnel was labelled as the firewall's refusal");
    assert.match(t.refused.body, TIMED_OUT("stuck-pass.test:443 did not accept a connection within 1 s"));
  });

  it("a slow upstream (head after 200 ms, body trickled for longer than either deadline) passes whole, over HTTP and intercepted HTTPS", async () => {
    const whole = Array.from({ length: SLOW_BODY_CHUNKS }, (_, i) => `chunk-${i};`).join("");
    for (const res of await Promise.all([via("GET", "http://slow.test/"), viaTunnel("slow-tls.test", "/")])) {
      assert.equal(res.status, 200, res.body);
      assert.equal(res.body, whole);
    }
  });
});
