// The firewall's upgrade path when the upstream does not switch protocols, as a real
// process on loopback dialing upstreams itself, and behind egress (--next-hop): a refusal
// (a 401 asking for credentials) reaches the agent as a plain answer would, streamed as
// it comes, never held whole; an upstream that fails is answered 502 and logged as a
// plain request's failure is; and the agent leaving, before the answer or during it,
// closes the upstream's connection instead of holding it.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { DaemonProcess } from "../../tests/support/daemon-process.ts";
import { startDecliningUpstream, type DecliningUpstream } from "../../tests/support/declining-upstream.ts";
import { until } from "../../tests/support/until.ts";
import { type FirewallPair, startFirewallPair } from "./test-harness.ts";

describe("the firewall's upgrades the upstream declines or fails (real processes)", () => {
  let upstream: DecliningUpstream;
  let pair: FirewallPair;
  let firewall: DaemonProcess;
  let behindEgress: DaemonProcess;

  before(async () => {
    upstream = await startDecliningUpstream();
    pair = await startFirewallPair("upgrade-declined", "ws.test", upstream.port);
    ({ alone: firewall, behindEgress } = pair);
  });

  after(async () => {
    await pair?.stop();
    await upstream?.close();
  });

  it("a refusal that never ends: the agent gets its status, its headers and its first bytes as they come; leaving closes the upstream's connection", async () => {
    await upstream.checkStreamedRefusal(firewall.port, "http://ws.test/refuse-endless/alone");
  });

  it("behind egress, the same refusal streams through both daemons", async () => {
    await upstream.checkStreamedRefusal(behindEgress.port, "http://ws.test/refuse-endless/behind");
  });

  it("the agent leaving before the upstream answers closes the upstream's connection, alone and behind egress", async () => {
    await upstream.checkAgentLeavesFirst(firewall.port, "http://ws.test/hold/alone");
    await upstream.checkAgentLeavesFirst(behindEgress.port, "http://ws.test/hold/behind");
  });

  it("an upstream that hangs up on the upgrade: 502 for the agent, not labelled blocked, and a line in the log as a plain request's failure has", async () => {
    const answer = await upstream.hangUpOn(firewall.port, "http://ws.test/hangup");
    assert.match(answer, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    // Nothing was refused: a plain request's 502 carries no x-bot-bottle-firewall either.
    assert.doesNotMatch(answer.slice(0, answer.indexOf("\r\n\r\n")), /^x-bot-bottle-firewall:/im);
    assert.match(answer, /\r\n\r\nbot-bottle firewall: cannot reach ws\.test: socket hang up\n$/);
    await until("the failed upgrade in the firewall's log", () => /^firewall: warning: upstream ws\.test: socket hang up$/m.test(firewall.stderr()), {
      timeoutMs: 10_000,
      why: () => firewall.stderr(),
    });
  });
});
