// egress's upgrade path when the upstream does not switch protocols, as a real process on
// loopback: a refusal streams to the agent as it comes; an upstream that fails is answered
// 502 and logged; the agent leaving, before the answer or during it, closes the upstream's
// connection instead of holding it (until the head deadline, or for ever).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startDaemon, type DaemonProcess } from "../../tests/support/daemon-process.ts";
import { startDecliningUpstream, type DecliningUpstream } from "../../tests/support/declining-upstream.ts";
import { until } from "../../tests/support/until.ts";

const EGRESS = new URL("./main.ts", import.meta.url).pathname;

describe("egress's upgrades the upstream declines or fails (real process)", () => {
  let upstream: DecliningUpstream;
  let egress: DaemonProcess;

  before(async () => {
    upstream = await startDecliningUpstream();
    egress = await startDaemon(EGRESS, ["--listen", "127.0.0.1:0", `--resolve=ws.test=127.0.0.1:${upstream.port}`]);
  });

  after(async () => {
    await egress?.stop();
    await upstream?.close();
  });

  it("a refusal that never ends: the agent gets its status, its headers and its first bytes as they come; leaving closes the upstream's connection", async () => {
    await upstream.checkStreamedRefusal(egress.port, "http://ws.test/refuse-endless");
  });

  it("the agent leaving before the upstream answers closes the upstream's connection", async () => {
    await upstream.checkAgentLeavesFirst(egress.port, "http://ws.test/hold");
  });

  it("an upstream that hangs up on the upgrade: 502 for the agent, and a line in the log", async () => {
    const answer = await upstream.hangUpOn(egress.port, "http://ws.test/hangup");
    assert.match(answer, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    assert.match(answer, /\r\n\r\negress: cannot reach upstream http:\/\/ws\.test: ECONNRESET\n$/);
    await until("the failed upgrade in egress's log", () => /^egress: warning: cannot reach upstream http:\/\/ws\.test: ECONNRESET$/m.test(egress.stderr()), {
      timeoutMs: 10_000,
      why: () => egress.stderr(),
    });
  });
});
