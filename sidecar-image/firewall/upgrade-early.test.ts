// What the agent sends on an upgrade's connection before the answer, and the firewall
// letting go of the connection, as a real process on loopback, alone and behind egress:
// WebSocket frames sent before the upstream's 101 (in the request's own packet, or after
// it) wait for it and are scanned like every frame after it; frames the upstream sends
// with its 101 reach the agent; after a refusal (the upstream's, or the firewall's own)
// what the agent sent goes nowhere, and the firewall lets go of the connection though
// the agent sent more after its request; an agent that half-closes before the answer
// abandons the upstream's connection. A socket the firewall still
// holds is seen in its process's fd table (Linux), and in process, where the firewall runs
// on this runtime's node:http (deno's is its own), in its server's count of connections.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { createLogger } from "../../lib/log.ts";
import type { DaemonProcess } from "../../tests/support/daemon-process.ts";
import {
  framesIn,
  frameTexts,
  type HeldUpgradeUpstream,
  rawAgent,
  releasedTo,
  socketsOf,
  startHeldUpgradeUpstream,
  upgradeHead,
  written,
} from "../../tests/support/held-upgrade-upstream.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { until } from "../../tests/support/until.ts";
import { wsFrame } from "../../tests/support/ws-frame.mjs";
import { createFirewall } from "./firewall.ts";
import { type FirewallPair, policyOf, startFirewallPair } from "./test-harness.ts";

const AWS = (JSON.parse(readFileSync(new URL("../../lib/dlp/testdata/positive.json", import.meta.url), "utf8")) as { detector: string; sample: string }[])
  .find((p) => p.detector === "aws")!
  .sample.replaceAll("·", "");
const NO_PROC = process.platform !== "linux" && "a process's sockets are counted in /proc, which only Linux has";

describe("what the agent sends on an upgrade before the answer, and the firewall letting go (real processes)", () => {
  let upstream: HeldUpgradeUpstream;
  let pair: FirewallPair;
  let firewall: DaemonProcess;

  before(async () => {
    upstream = await startHeldUpgradeUpstream();
    pair = await startFirewallPair("upgrade-early", "ws.test", upstream.port);
    firewall = pair.alone;
  });

  after(async () => {
    await pair?.stop();
    await upstream?.close();
  });

  /** An upgrade of `path` through `daemon` with `first` sent in the request's packet, and
   * `then` once the upstream has the head, before its answer (101 with `frames`). */
  async function earlyUpgrade(daemon: DaemonProcess, path: string, first: Buffer, then: Buffer, frames?: Buffer) {
    const agent = await rawAgent(daemon.port);
    await written(agent.socket, Buffer.concat([Buffer.from(upgradeHead(`http://ws.test${path}`)), first]));
    const held = await upstream.arrived(path);
    await written(agent.socket, then);
    held.switchWith(frames);
    return { agent, held };
  }

  const both = () => [["alone", pair.alone], ["behind egress", pair.behindEgress]] as const;

  it("clean frames sent before the 101, in the request's packet and after it, reach the upstream after it, in order; the upstream's frame sent with its 101 reaches the agent", async () => {
    // Past 64 KiB the firewall stops reading until the answer: TCP holds the rest.
    const big = "b".repeat(100_000);
    for (const [name, daemon] of both()) {
      const path = `/early-clean/${name.replace(" ", "-")}`;
      const early = Buffer.concat([wsFrame("sent before the 101", true), wsFrame(big, true)]);
      const { agent, held } = await earlyUpgrade(daemon, path, wsFrame("sent with the request", true), early, wsFrame("welcome", false));
      await agent.received(`the upstream's first frame (${name})`, () => framesIn(agent.body()).length >= 1);
      assert.match(agent.got().toString("latin1"), /^HTTP\/1\.1 101 Switching Protocols\r\n/, name);
      assert.deepEqual(frameTexts(agent.body()), ["welcome"], `${name}: the upstream's frame sent with its 101`);
      await agent.received(`the early frames at the upstream (${name})`, () => frameTexts(held.after()).length >= 3);
      assert.deepEqual(frameTexts(held.after()), ["sent with the request", "sent before the 101", big], name);
      agent.socket.destroy();
    }
  });

  it("a secret in a frame sent before the 101 is refused with 1008 once it comes, and never reaches the upstream; the clean frame before it does", async () => {
    for (const [name, daemon] of both()) {
      const path = `/early-secret/${name.replace(" ", "-")}`;
      const { agent, held } = await earlyUpgrade(daemon, path, wsFrame("sent with the request", true), wsFrame(`sent before the 101: ${AWS}`, true));
      const leaked = () => frameTexts(held.after()).some((t) => t.includes(AWS));
      await agent.received(`the refusal, or the secret at the upstream (${name})`, () => agent.isEnded() || leaked());
      assert.ok(!leaked(), `${name}: the secret sent before the 101 reached the upstream`);
      assert.match(agent.got().toString("latin1"), /^HTTP\/1\.1 101 Switching Protocols\r\n/, name);
      const close = framesIn(agent.body()).at(-1);
      assert.equal(close?.opcode, 8, `${name}: no close frame`);
      assert.equal(close.payload.readUInt16BE(0), 1008, name);
      assert.match(close.payload.subarray(2).toString(), /^detector aws matched in websocket text message/, name);
      // The firewall cuts the upstream's connection at the refusal: what reached it by then is all it gets.
      await agent.received(`the upstream's connection closed (${name})`, () => held.closed());
      assert.deepEqual(frameTexts(held.after()), ["sent with the request"], `${name}: what reached the upstream`);
      agent.socket.destroy();
    }
  });

  it("an upgrade the upstream declines: the agent gets the refusal, nothing it sent after its head reaches the upstream, and the firewall lets go of the connection", skipWhen(NO_PROC, "upgrade-early declined"), async () => {
    await upstream.checkDeclinedLetsGo(firewall, "/declined");
  });

  it("an agent that half-closes before the answer, frames sent: the upstream's connection is closed and the firewall lets go of both", skipWhen(NO_PROC, "upgrade-early half-close"), async () => {
    await upstream.checkHalfCloseLetsGo(firewall, "/half-closed");
  });

  it("the firewall's own refusals of an upgrade (a body declared, a protocol it cannot scan) and of a CONNECT are answered whole, and the connection is let go though the agent sends more after its request and then half-closes", skipWhen(NO_PROC, "upgrade-early refusals"), async () => {
    const baseline = await socketsOf(firewall.pid);
    const cases = [
      { name: "a body", head: upgradeHead("http://ws.test/with-body", "Content-Length: 11\r\n"), status: 400, reason: /an upgrade request cannot carry a body/ },
      { name: "h2c", head: upgradeHead("http://ws.test/h2c").replace("Upgrade: websocket", "Upgrade: h2c"), status: 403, reason: /upgrade to "h2c" is refused: only WebSocket traffic can be scanned/ },
      { name: "CONNECT", head: "CONNECT other.test:443 HTTP/1.1\r\nHost: other.test:443\r\n\r\n", status: 403, reason: /host is not in this bottle's allowlist/ },
    ];
    for (const c of cases) {
      const agent = await rawAgent(firewall.port);
      agent.socket.write(c.head);
      await agent.ended();
      // Bytes the firewall never reads as a request: a body, frames. It may have closed by now (then they bounce).
      agent.socket.end(Buffer.concat([Buffer.from("hello world"), wsFrame("more", true)]));
      const text = agent.got().toString("latin1");
      assert.match(text, new RegExp(`^HTTP/1\\.1 ${c.status} `), c.name);
      assert.match(text, c.reason, c.name);
      assert.equal(text.length - text.indexOf("\r\n\r\n") - 4, Number(/\r\ncontent-length: (\d+)\r\n/i.exec(text)?.[1]), `${c.name}: the answer was cut short`);
      agent.socket.destroy();
    }
    await releasedTo(firewall.pid, baseline, "the firewall letting go of the refused upgrades' sockets");
  });

  it("Connection: upgrade without an Upgrade header, or Upgrade without Connection: upgrade, is a plain request: forwarded without either", async () => {
    for (const [name, head] of [
      ["connection only", "GET http://ws.test/connection-only HTTP/1.1\r\nHost: ws.test\r\nConnection: upgrade\r\n\r\n"],
      ["upgrade only", "GET http://ws.test/upgrade-only HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\n\r\n"],
    ] as const) {
      const agent = await rawAgent(firewall.port);
      agent.socket.write(head);
      await agent.received(`the upstream's 200 (${name})`, () => /\r\n\r\nGET /.test(agent.got().toString("latin1")));
      assert.match(agent.got().toString("latin1"), /^HTTP\/1\.1 200 OK\r\n/, name);
      const seen = (await upstream.arrived(`/${name.replace(" ", "-")}`)).head;
      assert.doesNotMatch(seen, /^(upgrade|connection: *upgrade)/im, `${name}: the upstream was asked to upgrade`);
      agent.socket.destroy();
    }
  });

  it("in process: after the upstream's refusal, the firewall's own, and an agent's half-close before the answer, each with bytes the agent sent after its head, the firewall's server holds no connection", async () => {
    const fw = createFirewall({
      policy: policyOf(["ws.test"]),
      ca: pair.ca,
      resolve: new Map([["ws.test", { host: "127.0.0.1", port: upstream.port }]]),
      log: createLogger({ level: "error", write: () => {} }),
    });
    const port = (await fw.listen(0, "127.0.0.1")).port;
    const open = () => new Promise<number>((r) => fw.server.getConnections((_e, n) => r(n)));
    const released = (what: string) => until(what, async () => (await open()) === 0, { timeoutMs: 10_000, why: async () => `it holds ${await open()}` });
    try {
      const declined = await rawAgent(port);
      await written(declined.socket, upgradeHead("http://ws.test/in-process-declined"));
      const asked = await upstream.arrived("/in-process-declined"); // the head read: what follows is not node's `head`
      await written(declined.socket, wsFrame("after the request", true));
      asked.decline();
      await declined.ended();
      declined.socket.end();
      await released("the declined upgrade's connection let go");

      const refused = await rawAgent(port);
      await written(refused.socket, upgradeHead("http://ws.test/in-process-refused", "Content-Length: 11\r\n"));
      await refused.ended();
      refused.socket.end("hello world");
      await released("the refused upgrade's connection let go");

      const halfClosed = await rawAgent(port);
      await written(halfClosed.socket, upgradeHead("http://ws.test/in-process-half-closed"));
      const held = await upstream.arrived("/in-process-half-closed");
      await written(halfClosed.socket, wsFrame("before the answer", true));
      halfClosed.socket.end();
      await released("the abandoned upgrade's connection let go");
      await halfClosed.received("the upstream's connection closed", () => held.closed());
      for (const a of [declined, refused, halfClosed]) a.socket.destroy();
    } finally {
      await fw.close();
    }
  });
});
