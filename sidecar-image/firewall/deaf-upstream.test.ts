// An upstream that accepts a connection and never reads from it, on 127.0.0.1, sent a
// body larger than the sockets between hold: the firewall holds the body whole, so its
// upload runs at the upstream's pace alone and the head's clock (from the last byte
// written) never starts. As real processes with --connect-timeout 1 --head-timeout 1, the
// firewall dialing the upstream itself and the firewall behind egress: the agent gets a
// 504 naming the host and the wait that ran out, instead of waiting for good.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { mintCa } from "../../lib/tls/mod.ts";
import { startDaemon, type DaemonProcess } from "../../tests/support/daemon-process.ts";
import { plainVia } from "../../tests/support/raw-http.ts";
import { startFirewallProcess } from "./test-harness.ts";

const EGRESS = new URL("../egress/main.ts", import.meta.url).pathname;
const FLAGS = ["--connect-timeout", "1", "--head-timeout", "1"];
/** Past what loopback's socket buffers (and egress's, between two of them) take in. */
const BODY = Buffer.alloc(15 * 1024 * 1024, "a");

describe("an upstream that never reads the request (real processes)", () => {
  let deaf: net.Server;
  const accepted = new Set<net.Socket>();
  let dir: string;
  let alone: DaemonProcess;
  let egress: DaemonProcess;
  let behind: DaemonProcess;

  before(async () => {
    deaf = net.createServer((s) => {
      accepted.add(s);
      s.pause();
      s.on("error", () => s.destroy());
    });
    await new Promise<void>((ok) => deaf.listen(0, "127.0.0.1", ok));
    const resolve = `--resolve=deaf.test=127.0.0.1:${(deaf.address() as net.AddressInfo).port}`;
    dir = await mkdtemp(join(tmpdir(), "bb-deaf-upstream-"));
    const ca = await mintCa({ commonName: "deaf upstream bottle CA" });
    for (const sub of ["alone", "behind"]) await mkdir(join(dir, sub));
    alone = await startFirewallProcess(join(dir, "alone"), ["deaf.test"], ca, [resolve, ...FLAGS]);
    egress = await startDaemon(EGRESS, ["--listen", "127.0.0.1:0", resolve, ...FLAGS]);
    behind = await startFirewallProcess(join(dir, "behind"), ["deaf.test"], ca, ["--next-hop", `127.0.0.1:${egress.port}`, ...FLAGS]);
  });

  after(async () => {
    await alone?.stop();
    await behind?.stop();
    await egress?.stop();
    // Paused, its sockets never see the firewall's close: they are let go here.
    for (const s of accepted) s.destroy();
    await new Promise<void>((ok) => (deaf ? deaf.close(() => ok()) : ok()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const [name, text, port] of [
    ["dialing it itself: 504 after the dial's and the head's deadlines together (1 + 1)", "http://deaf.test did not read the whole request within 2 s", () => alone.port],
    ["behind egress: 504 after egress's deadlines plus 5 s (1 + 1 + 5)", "the next hop did not read the whole request for http://deaf.test within 7 s", () => behind.port],
  ] as const) {
    it(name, async () => {
      const conn = await plainVia(port());
      const res = await conn.proxyRequest("POST", "http://deaf.test/upload", { "content-type": "text/plain" }, BODY).finally(() => conn.socket.destroy());
      assert.equal(res.statusLine, "HTTP/1.1 504 Gateway Timeout", res.body);
      assert.equal(res.body, `bot-bottle firewall: ${text}\n`);
    });
  }
});
