// The firewall as a real process with a next hop that takes requests and says nothing (a
// stuck egress), and with one that never accepts a connection, on 127.0.0.1, with short
// deadlines (--connect-timeout 1, --head-timeout 1): the firewall gives egress its own
// deadlines plus 5 s to answer (lib/http/upstream-deadlines.ts nextHopWaits), then answers
// 504 naming the next hop, the host asked for and the wait that ran out, for plain
// requests, intercepted HTTPS, WebSocket upgrades and passthrough CONNECT alike.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { mintCa } from "../../lib/tls/mod.ts";
import type { DaemonProcess } from "../../tests/support/daemon-process.ts";
import { WS_UPGRADE } from "../../tests/support/deadline-upstreams.ts";
import { startQuietUpstream, type QuietUpstream } from "../../tests/support/quiet-upstream.ts";
import { connectTunnel, httpsVia, proxyRequestOnce, type RawResponse } from "../../tests/support/raw-http.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { NO_HANGING_CONNECT, startUnacceptingListener } from "../../tests/support/unaccepting-listener.ts";
import { startFirewallProcess } from "./test-harness.ts";

const HOSTS = ["quiet.test", { host: "pass.test", tlsPassthrough: true }];
const FLAGS = ["--connect-timeout", "1", "--head-timeout", "1"];
const timedOut = (text: string) => new RegExp(`^bot-bottle firewall: ${text.replace(/[.]/g, "\\.")}\\n$`);

function assertTimedOut(res: RawResponse, text: string): void {
  assert.equal(res.statusLine, "HTTP/1.1 504 Gateway Timeout", res.body);
  assert.equal(res.headers["x-bot-bottle-firewall"], undefined, "a timed-out request was labelled as the firewall's refusal");
  assert.match(res.body, timedOut(text));
}

async function refusedConnect(port: number, target: string): Promise<RawResponse> {
  const t = await connectTunnel(port, target);
  if ("socket" in t) {
    t.socket.destroy();
    assert.fail(`CONNECT ${target} was answered 200`);
  }
  return t.refused;
}

/** Folders and processes the file starts, undone after its tests in reverse order. */
const undo: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const u of undo.reverse()) await u();
});

/** The firewall as a real process whose next hop is 127.0.0.1:`hopPort`. */
async function firewallVia(hopPort: number, ca: { certPem: string; keyPem: string }): Promise<DaemonProcess> {
  const dir = await mkdtemp(join(tmpdir(), "bb-next-hop-"));
  undo.push(() => rm(dir, { recursive: true, force: true }));
  const firewall = await startFirewallProcess(dir, HOSTS, ca, ["--next-hop", `127.0.0.1:${hopPort}`, ...FLAGS]);
  undo.push(() => firewall.stop());
  return firewall;
}

const bottle = await mintCa({ commonName: "next hop deadlines bottle CA" });

describe("firewall waits on a next hop that takes requests and never answers (real process)", () => {
  let hop: QuietUpstream;
  let firewall: DaemonProcess;

  before(async () => {
    hop = await startQuietUpstream();
    undo.push(() => hop.close());
    firewall = await firewallVia(hop.port, bottle);
  });

  it("a plain request: 504 after egress's deadlines plus 5 s (1 + 1 + 5), naming the host, and the hop's connection closed", async () => {
    assertTimedOut(await proxyRequestOnce(firewall.port, "GET", "http://quiet.test/hold"), "the next hop sent no response head for http://quiet.test within 7 s");
    await hop.closed(hop.arrivedOnce("GET http://quiet.test/hold"));
  });

  it("an intercepted HTTPS request: the same, naming https://quiet.test", async () => {
    const conn = await httpsVia(firewall.port, "quiet.test", bottle.certPem);
    try {
      assertTimedOut(await conn.request("GET", "/hold-tls", { Host: "quiet.test" }), "the next hop sent no response head for https://quiet.test within 7 s");
    } finally {
      conn.socket.destroy();
    }
    await hop.closed(hop.arrivedOnce("GET https://quiet.test/hold-tls"));
  });

  it("a WebSocket upgrade: the same, and the hop's connection closed", async () => {
    assertTimedOut(await proxyRequestOnce(firewall.port, "GET", "http://quiet.test/hold-ws", WS_UPGRADE), "the next hop sent no response head for http://quiet.test within 7 s");
    await hop.closed(hop.arrivedOnce("GET http://quiet.test/hold-ws"));
  });

  it("a passthrough CONNECT: 504 after egress's dial deadline plus 5 s (1 + 5), and the hop's connection closed", async () => {
    assertTimedOut(await refusedConnect(firewall.port, "pass.test:443"), "the next hop did not answer CONNECT pass.test:443 within 6 s");
    await hop.closed(hop.arrivedOnce("CONNECT pass.test:443"));
  });
});

describe("firewall dialing a next hop that never accepts (real process)", skipWhen(NO_HANGING_CONNECT, "next hop dial deadline"), () => {
  let firewall: DaemonProcess;

  before(async () => {
    const stuck = await startUnacceptingListener();
    undo.push(() => stuck.close());
    firewall = await firewallVia(stuck.port, bottle);
  });

  it("a request, an upgrade and a passthrough CONNECT: 504 after --connect-timeout", async () => {
    const text = "the next hop did not accept a connection within 1 s";
    assertTimedOut(await proxyRequestOnce(firewall.port, "GET", "http://quiet.test/"), text);
    assertTimedOut(await proxyRequestOnce(firewall.port, "GET", "http://quiet.test/ws", WS_UPGRADE), text);
    assertTimedOut(await refusedConnect(firewall.port, "pass.test:443"), text);
  });
});
