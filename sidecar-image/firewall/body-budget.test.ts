// The firewall's budget for request bodies held for scanning (body-budget.ts), as a real
// process intercepting TLS on loopback, with --body-budget 10 (MiB) and uploads of 3 MiB.
// Each is scanned on the worker, which holds a copy while it scans, so an upload takes 6
// MiB while it is scanned and 3 while the upstream has not answered: two held at the
// upstream (6 MiB) leave no room for a third (9 read, 12 to scan), which is answered 503
// with Retry-After and never reaches the upstream, as is one that runs out of room while it
// is read, or while it inflates. Once the two are answered the budget is whole again, and
// an upload the agent gives up on part way gives its bytes back, as do two requests
// pipelined on a connection the agent closes.
//
// WebSocket messages take from the same budget, a 3 MiB one 9 MiB while scanned (as
// received, unmasked, the worker's copy): one fits, two held uploads leave no room for
// it, and it is closed with 1013 then, never forwarded; a half-sent one holds its bytes
// until its connection goes.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { mintCa, mintLeaf } from "../../lib/tls/mod.ts";
import type { DaemonProcess } from "../../tests/support/daemon-process.ts";
import { httpsVia, type RawHttp, type RawResponse } from "../../tests/support/raw-http.ts";
import { until } from "../../tests/support/until.ts";
import { wsFrame } from "../../tests/support/ws-frame.mjs";
import { type FakeUpstream, startFirewallProcess, startUpstream } from "./test-harness.ts";

const MiB = 1024 * 1024;
const HOST = "up.test";
const UPLOAD = 3 * MiB;

describe("the firewall's body budget (real process, TLS on loopback, --body-budget 10)", () => {
  let dir: string;
  let bottleCa: string;
  let upstream: FakeUpstream;
  let firewall: DaemonProcess;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bb-body-budget-"));
    const bottle = await mintCa({ commonName: "body budget bottle CA" });
    bottleCa = bottle.certPem;
    const upstreamCa = await mintCa({ commonName: "body budget upstream CA" });
    upstream = await startUpstream({ tls: await mintLeaf({ caCertPem: upstreamCa.certPem, caKeyPem: upstreamCa.keyPem, hosts: [HOST] }) });
    await writeFile(join(dir, "upstream-ca.pem"), upstreamCa.certPem);
    firewall = await startFirewallProcess(dir, [HOST], bottle, [
      "--upstream-ca", join(dir, "upstream-ca.pem"),
      "--resolve", `${HOST}=127.0.0.1:${upstream.port}`,
      "--body-budget", "10",
    ]);
  });

  after(async () => {
    await firewall?.stop();
    await upstream?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** One upload of `size` bytes to `path` on an intercepted HTTPS connection of its own. */
  async function upload(path: string, size = UPLOAD): Promise<RawResponse> {
    const c = await httpsVia(firewall.port, HOST, bottleCa);
    try {
      return await c.request("POST", path, { Host: HOST, "content-type": "application/octet-stream" }, Buffer.alloc(size, "x"));
    } finally {
      c.socket.destroy();
    }
  }

  const arrived = (path: string) => upstream.requests.filter((r) => r.url === path).length;

  /**
   * Uploads to /hold/<tag>-1, -2, ..., each sent once the one before is held at the upstream
   * (two scanned at once would take 12 MiB), then answered: their answers.
   */
  async function heldInTurn(tag: string, n: number): Promise<Promise<RawResponse>[]> {
    const uploads: Promise<RawResponse>[] = [];
    for (let i = 1; i <= n; i++) {
      // One answered before it is held (a 503 when the budget has less room than it should) says so at once.
      let early: RawResponse | undefined;
      uploads.push(upload(`/hold/${tag}-${i}`).then((res) => (early = res)));
      await until(`upload ${tag}-${i} held at the upstream`, () => {
        if (early && upstream.held() < i) throw new Error(`upload ${tag}-${i} was answered ${early.status} before the upstream held it: ${early.body}`);
        return upstream.held() === i;
      }, { why: () => firewall.stderr() });
    }
    return uploads;
  }

  /** Two uploads held at the upstream at once, then answered: both pass. */
  async function twoHeldPass(tag: string): Promise<void> {
    const uploads = await heldInTurn(tag, 2);
    upstream.release();
    for (const res of await Promise.all(uploads)) assert.equal(res.status, 200, res.body);
  }

  it("with two uploads held upstream, a third is answered 503 with Retry-After, never forwarded; the two pass, and the budget is whole again after", async () => {
    const held = await heldInTurn("first", 2);
    const third = await upload("/hold/third");
    assert.equal(third.status, 503, third.body);
    assert.equal(third.headers["retry-after"], "1");
    // Not the policy's refusal: nothing for the operator to approve.
    assert.equal(third.headers["x-bot-bottle-firewall"], undefined);
    assert.match(third.body, /^bot-bottle firewall: cannot take the request to up\.test now: the firewall's budget for request bodies and WebSocket messages held for scanning \(10 MiB, --body-budget\) has no room for this one: 9 MiB are held, some of it this one's;/);
    assert.equal(arrived("/hold/third"), 0, "the upload past the budget reached the upstream");
    upstream.release();
    for (const res of await Promise.all(held)) assert.equal(res.status, 200, res.body);
    await twoHeldPass("again");
    await until("the 503 in the firewall's log", () => /answered 503: the firewall's budget for request bodies and WebSocket messages/.test(firewall.stderr()), { why: () => firewall.stderr() });
  });

  it("an upload that runs past the budget while it is read is answered 503 then, its connection closed once the agent has sent the rest (read and dropped), with no reset", async () => {
    const held = await heldInTurn("while-read", 2);
    // 6 MiB held: a 16 MiB upload runs out of room at 4 MiB read. Sent whole, as a client
    // that writes its body before it reads does: the firewall lingers (linger.ts), reading
    // and dropping the rest, so nothing the agent sends meets a closed socket.
    const size = 16 * MiB;
    const c = await httpsVia(firewall.port, HOST, bottleCa);
    const errors: string[] = [];
    c.socket.on("error", (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
    let closed = false;
    c.socket.once("close", () => (closed = true));
    c.socket.write(Buffer.concat([Buffer.from(`POST /hold/big HTTP/1.1\r\nHost: ${HOST}\r\ncontent-length: ${size}\r\n\r\n`), Buffer.alloc(size, "x")]));
    let res: RawResponse;
    try {
      res = await c.readResponse();
      await until("the connection closed", () => closed, { why: () => firewall.stderr() });
    } finally {
      c.socket.destroy();
      // Whatever the answer, the two held uploads go on, or every later test finds the budget full.
      upstream.release();
    }
    for (const r of await Promise.all(held)) assert.equal(r.status, 200, r.body);
    assert.equal(res.status, 503, res.body);
    // Refused while read; one refused at its scan, read whole, keeps its connection.
    assert.equal(res.headers.connection, "close");
    assert.deepEqual(errors, [], "the agent's connection was reset");
    assert.equal(arrived("/hold/big"), 0);
  });

  it("a small gzip body that inflates past the budget is answered 503, never forwarded; the budget is whole after", async () => {
    const c = await httpsVia(firewall.port, HOST, bottleCa);
    const gz = gzipSync(Buffer.alloc(12 * MiB, "x"));
    const res = await c.request("POST", "/inflates", { Host: HOST, "content-encoding": "gzip" }, gz);
    c.socket.destroy();
    assert.equal(res.status, 503, res.body);
    assert.equal(res.headers["retry-after"], "1");
    assert.equal(arrived("/inflates"), 0);
    await twoHeldPass("after-inflate");
  });

  it("an upload the agent abandons part way gives its bytes back", async () => {
    // 7 MiB of a declared 9 sent, then nothing: held, an upload of 3 no longer fits.
    const stalled = await httpsVia(firewall.port, HOST, bottleCa);
    stalled.socket.write(`POST /stalled HTTP/1.1\r\nHost: ${HOST}\r\ncontent-length: ${9 * MiB}\r\n\r\n`);
    stalled.socket.write(Buffer.alloc(7 * MiB, "x"));
    await until("an upload refused while the stalled one holds its bytes", async () => (await upload("/probe")).status === 503, { why: () => firewall.stderr() });
    stalled.socket.destroy();
    await until("an upload passing once the stalled one is gone", async () => (await upload("/probe")).status === 200, { why: () => firewall.stderr() });
    await twoHeldPass("after-abort");
    assert.equal(arrived("/stalled"), 0);
  });

  it("a connection closed with two requests pipelined on it gives back both bodies' bytes, the second's read whole or part way", async () => {
    const head = (path: string, size = UPLOAD) => `POST ${path} HTTP/1.1\r\nHost: ${HOST}\r\ncontent-length: ${size}\r\n\r\n`;
    for (const second of ["whole", "part-way"] as const) {
      const c = await httpsVia(firewall.port, HOST, bottleCa);
      c.socket.write(head(`/hold/pipelined-${second}-1`) + "x".repeat(UPLOAD));
      await until("the first held at the upstream", () => upstream.held() === 1, { why: () => firewall.stderr() });
      // Its answer waits on the first's, so the second never gets the socket to answer on.
      if (second === "whole") {
        c.socket.write(head(`/hold/pipelined-${second}-2`) + "x".repeat(UPLOAD));
        await until("the second held at the upstream too", () => upstream.held() === 2, { why: () => firewall.stderr() });
      } else {
        c.socket.write(head(`/hold/pipelined-${second}-2`, 9 * MiB) + "x".repeat(2 * MiB));
      }
      // 3 MiB held by the first and 3 or 2 by the second: an upload of 3 (6 to scan) does not fit.
      await until(`an upload refused while the two hold their bytes (second ${second})`, async () => (await upload("/probe")).status === 503, { why: () => firewall.stderr() });
      c.socket.destroy();
      await until(`an upload passing once the connection is gone (second ${second})`, async () => (await upload("/probe")).status === 200, { why: () => firewall.stderr() });
      upstream.release();
      await twoHeldPass(`after-pipelined-${second}`);
    }
  });

  const WS_HEADERS = { Host: HOST, upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" };

  /** A WebSocket to the upstream through the firewall, on an intercepted connection of its own. */
  async function wsSession(): Promise<RawHttp> {
    const c = await httpsVia(firewall.port, HOST, bottleCa);
    const res = await c.request("GET", "/chat", WS_HEADERS);
    assert.equal(res.status, 101, res.body);
    return c;
  }

  /** Messages of `fill` (each a payload of `size` bytes of it) that reached the upstream. */
  const wsArrived = (fill: string, size = UPLOAD) => upstream.wsFrames.filter((f) => f.length === size && f.startsWith(fill)).length;

  it("a WebSocket message that fits is forwarded whole and gives its bytes back", async () => {
    const c = await wsSession();
    c.socket.write(wsFrame(Buffer.alloc(UPLOAD, "a"), true, { opcode: 2 }));
    await until("the message at the upstream", () => wsArrived("a") === 1, { why: () => firewall.stderr() });
    c.socket.destroy();
    await twoHeldPass("after-ws");
  });

  it("with two uploads held upstream, WebSocket messages that do not fit are closed with 1013, never forwarded nor recorded as refused; the budget is whole after", async () => {
    const held = await heldInTurn("ws", 2);
    const sessions = await Promise.all([1, 2, 3].map(() => wsSession()));
    // 6 MiB held leave 4: each 3 MiB message needs 6 once whole, whatever the others take.
    const message = wsFrame(Buffer.alloc(UPLOAD, "b"), true, { opcode: 2 });
    for (const s of sessions) s.socket.write(message);
    for (const s of sessions) {
      const close = await s.readWsFrame();
      assert.equal(close.opcode, 8, `expected a close frame, got opcode ${close.opcode}`);
      assert.equal(close.payload.readUInt16BE(0), 1013);
      assert.match(close.payload.subarray(2).toString(), /no room to hold this message for scanning now \(--body-budget\); try again later$/);
      s.socket.destroy();
    }
    upstream.release();
    for (const res of await Promise.all(held)) assert.equal(res.status, 200, res.body);
    assert.equal(wsArrived("b"), 0, "a message past the budget reached the upstream");
    await until("the 1013 in the firewall's log", () => /closed websocket to up\.test with 1013 \(try again later\): the firewall's budget for request bodies and WebSocket messages/.test(firewall.stderr()), { why: () => firewall.stderr() });
    assert.doesNotMatch(firewall.stderr(), /blocked websocket/);
    await twoHeldPass("after-ws-1013");
    const again = await wsSession();
    again.socket.write(wsFrame(Buffer.alloc(UPLOAD, "d"), true, { opcode: 2 }));
    await until("a message passing once the uploads are answered", () => wsArrived("d") === 1, { why: () => firewall.stderr() });
    again.socket.destroy();
  });

  it("a WebSocket message sent part way holds its bytes (an upload is answered 503) until its agent goes", async () => {
    const c = await wsSession();
    // 7 MiB of a 9 MiB message: an upload of 3 (6 while scanned) no longer fits.
    c.socket.write(wsFrame(Buffer.alloc(9 * MiB, "c"), true, { opcode: 2 }).subarray(0, 7 * MiB));
    await until("an upload refused while the half-sent message holds its bytes", async () => (await upload("/probe")).status === 503, { why: () => firewall.stderr() });
    c.socket.destroy();
    await until("an upload passing once the half-sent message is gone", async () => (await upload("/probe")).status === 200, { why: () => firewall.stderr() });
    await twoHeldPass("after-ws-abandon");
    assert.equal(wsArrived("c", 9 * MiB), 0);
  });
});
