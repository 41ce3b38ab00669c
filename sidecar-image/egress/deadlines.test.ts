// egress as a real process with short deadlines (--connect-timeout 1, --head-timeout 2)
// against upstreams on 127.0.0.1 that never accept, accept and say nothing, or answer
// slowly: the first two get a 504 naming them and what did not happen, the last passes
// whole, over plain HTTP and over TLS (whose handshake ends the dial's deadline).
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { REPO_ROOT, startDaemon, type DaemonProcess } from "../../tests/support/daemon-process.ts";
import { connectTunnel, proxyRequestOnce } from "../../tests/support/raw-http.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { NO_HANGING_CONNECT } from "../../tests/support/unaccepting-listener.ts";
import { startDeadlineUpstreams, WS_UPGRADE, type DeadlineUpstreams } from "../../tests/support/deadline-upstreams.ts";
import { SLOW_BODY_CHUNKS, type QuietUpstream } from "../../tests/support/quiet-upstream.ts";
import { mintCa } from "../../lib/tls/mod.ts";
import { startFirewallProcess } from "../firewall/test-harness.ts";

describe("egress deadlines (real process)", skipWhen(NO_HANGING_CONNECT, "egress deadlines"), () => {
  let upstreams: DeadlineUpstreams;
  let quiet: QuietUpstream;
  let egress: DaemonProcess;

  before(async () => {
    upstreams = await startDeadlineUpstreams();
    quiet = upstreams.quiet;
    egress = await startDaemon(join(REPO_ROOT, "sidecar-image/egress/main.ts"), [
      "--listen", "127.0.0.1:0",
      "--connect-timeout", "1",
      "--head-timeout", "2",
      "--extra-ca", upstreams.caFile,
      ...upstreams.resolveFlags(),
    ]);
  });

  after(async () => {
    await egress?.stop();
    await upstreams?.close();
  });

  /** One request on its own connection to egress. */
  const via = (method: string, url: string, headers: Record<string, string> = {}) => proxyRequestOnce(egress.port, method, url, headers);
  const arrivedOnce = (line: string) => quiet.arrivedOnce(line);

  it("an upstream that takes the request and never answers: 504 naming it after --head-timeout, and its connection closed", async () => {
    const res = await via("GET", "http://quiet.test/hold");
    assert.equal(res.status, 504, res.body);
    assert.match(res.body, /^egress: http:\/\/quiet\.test sent no response head within 2 s\n$/);
    await quiet.closed(arrivedOnce("GET /hold"));
  });

  it("a head timeout on a pooled keep-alive connection is not sent again on a fresh one", () => upstreams.checkPooledHeadTimeout(egress.port));

  it("an upgrade the upstream never answers: 504 after --head-timeout", async () => {
    const res = await via("GET", "http://quiet.test/hold-ws", WS_UPGRADE);
    assert.equal(res.status, 504, res.body);
    assert.match(res.body, /^egress: http:\/\/quiet\.test sent no response head within 2 s\n$/);
    await quiet.closed(arrivedOnce("GET /hold-ws"));
  });

  it("a TLS upstream that accepts and never finishes the handshake: 504 after --connect-timeout", async () => {
    const before = quiet.connections();
    const res = await via("GET", "https://quiet.test/never-secure");
    assert.equal(res.status, 504, res.body);
    assert.match(res.body, /^egress: https:\/\/quiet\.test accepted a connection but did not finish the TLS handshake within 1 s\n$/);
    assert.equal(quiet.connections(), before + 1);
    await quiet.closed(before);
  });

  it("an upstream that never accepts the connection: 504 after --connect-timeout, for a request, an upgrade and a CONNECT", async () => {
    for (const res of [await via("GET", "http://stuck.test/"), await via("GET", "http://stuck.test/ws", WS_UPGRADE)]) {
      assert.equal(res.status, 504, res.body);
      assert.match(res.body, /^egress: http:\/\/stuck\.test did not accept a connection within 1 s\n$/);
    }
    const t = await connectTunnel(egress.port, "stuck.test:443");
    assert.ok("refused" in t, "CONNECT to a host that never accepts was answered 200");
    assert.equal(t.refused.status, 504, t.refused.body);
    assert.equal(t.refused.statusLine, "HTTP/1.1 504 Gateway Timeout");
    assert.match(t.refused.body, /^egress: stuck\.test:443 did not accept a connection within 1 s\n$/);
  });

  it("behind the firewall (--next-hop egress), a passthrough CONNECT to an upstream that never accepts: the firewall passes egress's 504 and its words on", async () => {
    const bottle = await mintCa({ commonName: "egress deadlines bottle CA" });
    const firewall = await startFirewallProcess(upstreams.dir, [{ host: "stuck.test", tlsPassthrough: true }], bottle, ["--next-hop", `127.0.0.1:${egress.port}`]);
    try {
      const t = await connectTunnel(firewall.port, "stuck.test:443");
      assert.ok("refused" in t, "CONNECT to a host that never accepts was answered 200");
      assert.equal(t.refused.statusLine, "HTTP/1.1 504 Gateway Timeout", t.refused.body);
      assert.match(t.refused.body, /^bot-bottle firewall: stuck\.test:443 did not accept a connection within 1 s\n$/);
    } finally {
      await firewall.stop();
    }
  });

  it("a slow upstream (head after 200 ms, body trickled for longer than either deadline) passes whole, over HTTP and TLS", async () => {
    const whole = Array.from({ length: SLOW_BODY_CHUNKS }, (_, i) => `chunk-${i};`).join("");
    for (const res of await Promise.all([via("GET", "http://slow.test/"), via("GET", "https://slow-tls.test/")])) {
      assert.equal(res.status, 200, res.body);
      assert.equal(res.body, whole);
    }
  });
});
