// The firewall's lingering close (linger.ts), in process on loopback with real TLS: an
// agent still sending a refused upload, or bytes after a refused CONNECT or upgrade, or
// frames after a WebSocket close, reads the whole answer with no reset, and the firewall
// lets go of the socket once the agent ends; one that never stops sending, goes quiet
// without closing, or sends too much is cut within the bounds set here.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { after, describe, it } from "node:test";
import { mintCa } from "../../lib/tls/mod.ts";
import { httpsVia, plainVia, RawHttp } from "../../tests/support/raw-http.ts";
import { until } from "../../tests/support/until.ts";
import { wsFrame } from "../../tests/support/ws-frame.mjs";
import { createFirewall, type FirewallOptions } from "./firewall.ts";
import type { Linger } from "./linger.ts";
import { policyOf, startTlsUpstream, startUpstream, watchConnection as watch } from "./test-harness.ts";

const MiB = 1024 * 1024;
const HOST = "up.test";
const PLAIN = "plain.test";
const AWS = "AKIAIOSFODNN7EXAMPLE";
const bottleCa = await mintCa({ commonName: "linger bottle CA" });
const { upstream, ca: upstreamCa } = await startTlsUpstream([HOST]);
const plainUpstream = await startUpstream();
const open: { close(): Promise<void> }[] = [];
after(async () => {
  for (const c of open) await c.close();
  await upstream.close();
  await plainUpstream.close();
});

/** A firewall for HOST (over TLS) and PLAIN (plain HTTP); bodies over 1 MiB are refused. */
async function firewall(extra: Partial<FirewallOptions> = {}) {
  const fw = createFirewall({
    policy: policyOf([HOST, PLAIN]),
    ca: bottleCa,
    upstreamCa: [upstreamCa],
    resolve: new Map([[HOST, { host: "127.0.0.1", port: upstream.port }], [PLAIN, { host: "127.0.0.1", port: plainUpstream.port }]]),
    maxBodyBytes: MiB,
    ...extra,
  });
  open.push(fw);
  const port = (await fw.listen(0, "127.0.0.1")).port;
  const connections = () => new Promise<number>((r, j) => fw.server.getConnections((e, n) => (e ? j(e) : r(n))));
  return { port, connections };
}

/** The whole-body request head for `path` of `size` bytes. */
const head = (target: string, host: string, size: number) => `POST ${target} HTTP/1.1\r\nHost: ${host}\r\ncontent-type: application/octet-stream\r\ncontent-length: ${size}\r\n\r\n`;

/**
 * Send a request of an 8 MiB body on `c` in one write (most of it still in the client's
 * buffers when the firewall answers), read the answer, then wait for the connection to
 * close: the client ends its side once the firewall has, after the rest of its upload.
 */
async function uploadAll(c: RawHttp, target: string, host: string) {
  const seen = watch(c.socket);
  const size = 8 * MiB;
  c.socket.write(Buffer.concat([Buffer.from(head(target, host, size)), Buffer.alloc(size, "x")]));
  const res = await c.readResponse();
  await until("the connection closed", seen.closed);
  return { res, errors: seen.errors };
}

describe("an upload refused while the agent still sends it", () => {
  it("over the body limit (413, intercepted TLS and plain proxy): the whole answer is read, no reset", async () => {
    const fw = await firewall();
    for (const via of ["tls", "plain"] as const) {
      const c = via === "tls" ? await httpsVia(fw.port, HOST, bottleCa.certPem) : await plainVia(fw.port);
      const { res, errors } = await uploadAll(c, via === "tls" ? "/big" : `http://${PLAIN}/big`, via === "tls" ? HOST : PLAIN);
      assert.equal(res.status, 413, `${via}: ${res.body}`);
      assert.equal(res.headers.connection, "close");
      assert.match(res.body, /request body is over 1 MiB, too large to scan\n$/);
      assert.deepEqual(errors, [], `${via}: the client's connection failed`);
    }
    await until("every connection let go", async () => (await fw.connections()) === 0);
  });

  it("over the body budget while read (503, intercepted TLS): the whole answer is read, no reset", async () => {
    const fw = await firewall({ maxBodyBytes: 16 * MiB, bodyBudgetBytes: MiB });
    const c = await httpsVia(fw.port, HOST, bottleCa.certPem);
    const { res, errors } = await uploadAll(c, "/budget", HOST);
    assert.equal(res.status, 503, res.body);
    assert.equal(res.headers["retry-after"], "1");
    assert.match(res.body, /--body-budget\) has no room for this one/);
    assert.deepEqual(errors, [], "the client's connection failed");
    assert.equal(upstream.requests.filter((r) => r.url === "/budget").length, 0);
  });

  it("a secret in the URL with a large body behind it (403): answered and drained, the connection kept", async () => {
    const fw = await firewall({ maxBodyBytes: 16 * MiB });
    const c = await httpsVia(fw.port, HOST, bottleCa.certPem);
    const seen = watch(c.socket);
    const res = await c.request("POST", `/?k=${AWS}`, { Host: HOST }, Buffer.alloc(8 * MiB, "x"));
    assert.equal(res.status, 403, res.body);
    assert.equal(res.headers["x-bot-bottle-firewall"], "blocked");
    // node drains a refused body on a connection kept alive: the next request is served.
    assert.equal((await c.request("GET", "/after", { Host: HOST })).status, 200);
    assert.deepEqual(seen.errors, []);
    c.socket.destroy();
  });
});

describe("a refused CONNECT or upgrade with bytes behind it", () => {
  it("CONNECT to a host not allowed, a TLS hello's worth and more sent at once: the 403 is read, no reset, and the firewall lets go once the agent closes", async () => {
    const fw = await firewall();
    const socket = net.connect(fw.port, "127.0.0.1");
    const c = new RawHttp(socket);
    const seen = watch(socket);
    socket.write(Buffer.concat([Buffer.from("CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n"), Buffer.alloc(4 * MiB, 0x16)]));
    const res = await c.readResponse();
    assert.equal(res.status, 403, res.body);
    assert.equal(res.headers["x-bot-bottle-firewall"], "blocked");
    await until("the connection closed", seen.closed);
    assert.deepEqual(seen.errors, []);
    await until("the firewall's socket let go", async () => (await fw.connections()) === 0);
  });

  it("an upgrade to something other than WebSocket, frames behind it: the 403 is read, no reset", async () => {
    const fw = await firewall();
    const c = await httpsVia(fw.port, HOST, bottleCa.certPem);
    const seen = watch(c.socket);
    c.socket.write(Buffer.concat([Buffer.from(`GET /x HTTP/1.1\r\nHost: ${HOST}\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n`), Buffer.alloc(4 * MiB, "y")]));
    const res = await c.readResponse();
    assert.equal(res.status, 403, res.body);
    assert.match(res.body, /upgrade to "h2c" is refused/);
    await until("the connection closed", seen.closed);
    assert.deepEqual(seen.errors, []);
  });
});

describe("a WebSocket closed by the firewall", () => {
  const WS = { Host: HOST, upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" };

  it("a secret, then frames as fast as they go until the close frame is read (intercepted TLS and plain proxy): the agent reads the 1008 close frame and its reason, no reset, nothing after reaches the upstream, and its close frame ends the connection at once", async () => {
    // Quiet for a minute before the firewall would give up on its own: only the agent's close frame ends it sooner.
    const fw = await firewall({ maxBodyBytes: 16 * MiB, linger: { quietMs: 60_000, totalMs: 60_000 } });
    for (const via of ["tls", "plain"] as const) {
      const c = via === "tls" ? await httpsVia(fw.port, HOST, bottleCa.certPem) : await plainVia(fw.port);
      const up = via === "tls" ? upstream : plainUpstream;
      const opened = await c.request("GET", via === "tls" ? "/chat" : `http://${PLAIN}/chat`, { ...WS, Host: via === "tls" ? HOST : PLAIN });
      assert.equal(opened.status, 101, `${via}: ${opened.body}`);
      const seen = watch(c.socket);
      c.socket.allowHalfOpen = true; // the agent ends only with its close frame, as a WebSocket client does
      const before = up.wsFrames.length;
      c.socket.write(wsFrame(`key ${AWS}`, true));
      // Sending on as a busy client does: the firewall has the secret long before this stops.
      let reading = true;
      const piece = wsFrame(Buffer.alloc(64 * 1024, "z"), true, { opcode: 2 });
      const go = () => {
        while (reading && !c.socket.destroyed && c.socket.write(piece));
        if (reading && !c.socket.destroyed) c.socket.once("drain", go);
      };
      go();
      const close = await c.readWsFrame().finally(() => (reading = false));
      assert.equal(close.opcode, 8, `${via}: expected a close frame, got opcode ${close.opcode}`);
      assert.equal(close.payload.readUInt16BE(0), 1008);
      assert.match(close.payload.subarray(2).toString(), /^detector aws matched in websocket text message/);
      const code = Buffer.alloc(2);
      code.writeUInt16BE(1008);
      // Its close frame answers the firewall's, and then it ends its side, as the firewall has.
      c.socket.end(wsFrame(code, true, { opcode: 8 }));
      await until(`${via}: the connection closed after the agent's close frame`, seen.closed, { timeoutMs: 10_000 });
      assert.deepEqual(seen.errors, [], `${via}: the client's connection failed`);
      await until(`${via}: the firewall's socket let go`, async () => (await fw.connections()) === 0);
      assert.equal(up.wsFrames.length, before, `${via}: a frame after the refused one reached the upstream`);
    }
  });
});

describe("the linger's bounds", () => {
  /** A refused upload (plain proxy, declared 1 GiB) whose client then calls `more` until
   * the firewall lets go of the connection: how long that took after the answer. */
  async function refusedThen(linger: Partial<Linger>, more: (s: net.Socket) => void) {
    const fw = await firewall({ linger });
    const c = await plainVia(fw.port);
    const seen = watch(c.socket);
    c.socket.allowHalfOpen = true; // the firewall's end alone does not end the agent's sending
    c.socket.write(head(`http://${PLAIN}/big`, PLAIN, 1024 * MiB) + "x".repeat(2 * MiB));
    const res = await c.readResponse();
    assert.equal(res.status, 413, res.body);
    const answered = Date.now();
    more(c.socket);
    await until("the firewall's socket let go", async () => (await fw.connections()) === 0, { timeoutMs: 20_000 });
    const lingered = Date.now() - answered;
    c.socket.destroy();
    return { errors: seen.errors, lingered };
  }

  /** Writes a piece every few milliseconds until the socket closes: never quiet, never much. */
  const trickle = (s: net.Socket) => {
    const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write("x".repeat(1024))), 20);
    s.once("close", () => clearInterval(t));
  };
  /** Writes as fast as the socket takes it until it closes. */
  const flood = (s: net.Socket) => {
    const piece = Buffer.alloc(64 * 1024, "x");
    const go = () => {
      while (!s.destroyed && s.write(piece));
      if (!s.destroyed) s.once("drain", go);
    };
    go();
  };

  it("an agent that never stops sending is cut at totalMs", async () => {
    const { lingered } = await refusedThen({ quietMs: 30_000, totalMs: 1000, maxBytes: 1024 * MiB }, trickle);
    assert.ok(lingered >= 900 && lingered < 15_000, `cut after ${lingered} ms`);
  });

  it("an agent that stops sending without closing is let go after quietMs", async () => {
    const { lingered, errors } = await refusedThen({ quietMs: 300, totalMs: 60_000 }, () => {});
    assert.ok(lingered < 15_000, `cut after ${lingered} ms`);
    // All it sent was read: the firewall's end is a clean one.
    assert.deepEqual(errors, []);
  });

  it("an agent that floods is cut past maxBytes, through node's parser and read directly", async () => {
    const limits = { quietMs: 60_000, totalMs: 60_000, maxBytes: 4 * MiB };
    await refusedThen(limits, flood);
    // A refused CONNECT: read by the linger itself.
    const fw = await firewall({ linger: limits });
    const socket = net.connect({ port: fw.port, host: "127.0.0.1", allowHalfOpen: true });
    socket.on("error", () => {}); // the cut resets it
    socket.write("CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n");
    flood(socket);
    await until("the firewall's socket let go", async () => (await fw.connections()) === 0, { timeoutMs: 20_000 });
    socket.destroy();
  });
});
