// What arrives on an upgrade's connection to egress before the answer, and egress letting
// go of the connection, as a real process on loopback: bytes sent before the upstream's
// 101 go on after it, in order (egress reads no frames the agent sends: the firewall
// before it scanned them), and the upstream's frames sent with its 101 come back; after a
// refusal (the upstream's or egress's own) those bytes go nowhere and egress closes the
// connection, though the sender sent bytes it never reads; a sender that half-closes
// before the answer abandons the upstream's connection. A socket egress still holds is
// seen in its process's fd table (Linux).
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { startDaemon, type DaemonProcess } from "../../tests/support/daemon-process.ts";
import { frameTexts, type HeldUpgradeUpstream, rawAgent, releasedTo, socketsOf, startHeldUpgradeUpstream, upgradeHead, written } from "../../tests/support/held-upgrade-upstream.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { wsFrame } from "../../tests/support/ws-frame.mjs";

const EGRESS = new URL("./main.ts", import.meta.url).pathname;
const NO_PROC = process.platform !== "linux" && "a process's sockets are counted in /proc, which only Linux has";

describe("what egress gets on an upgrade before the answer, and egress letting go (real process)", () => {
  let upstream: HeldUpgradeUpstream;
  let egress: DaemonProcess;

  before(async () => {
    upstream = await startHeldUpgradeUpstream();
    egress = await startDaemon(EGRESS, ["--listen", "127.0.0.1:0", `--resolve=ws.test=127.0.0.1:${upstream.port}`]);
  });

  after(async () => {
    await egress?.stop();
    await upstream?.close();
  });

  it("bytes sent before the 101 go on after it, in order; the upstream's frame sent with its 101 comes back", async () => {
    const agent = await rawAgent(egress.port);
    await written(agent.socket, Buffer.concat([Buffer.from(upgradeHead("http://ws.test/early")), wsFrame("sent with the request", true)]));
    const held = await upstream.arrived("/early");
    await written(agent.socket, wsFrame("sent before the 101", true));
    held.switchWith(wsFrame("welcome", false));
    await agent.received("the upstream's frame", () => frameTexts(agent.body()).length >= 1);
    assert.match(agent.got().toString("latin1"), /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.deepEqual(frameTexts(agent.body()), ["welcome"]);
    await agent.received("both early frames at the upstream", () => frameTexts(held.after()).length >= 2);
    assert.deepEqual(frameTexts(held.after()), ["sent with the request", "sent before the 101"]);
    agent.socket.destroy();
  });

  it("an upgrade the upstream declines: the refusal comes back, nothing sent after the head reaches the upstream, and egress lets go of the connection", skipWhen(NO_PROC, "egress upgrade-early declined"), async () => {
    await upstream.checkDeclinedLetsGo(egress, "/declined");
  });

  it("a sender that half-closes before the answer, bytes sent: the upstream's connection is closed and egress lets go of both", skipWhen(NO_PROC, "egress upgrade-early half-close"), async () => {
    await upstream.checkHalfCloseLetsGo(egress, "/half-closed");
  });

  it("egress's own refusal of an upgrade is answered whole, and the connection is let go though the sender sends more and then half-closes", skipWhen(NO_PROC, "egress upgrade-early refusal"), async () => {
    const baseline = await socketsOf(egress.pid);
    const agent = await rawAgent(egress.port);
    agent.socket.write(upgradeHead("http://ws.test/x").replace("GET http://ws.test/x", "GET /not-absolute"));
    await agent.ended();
    const text = agent.got().toString("latin1");
    assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(text, /\r\n\r\negress: expected an absolute-form request/);
    agent.socket.end(wsFrame("more", true)); // it may have closed by now: then they bounce
    await releasedTo(egress.pid, baseline, "egress letting go of the refused upgrade's socket");
    agent.socket.destroy();
  });
});
