// egress reads upstream answers with its own reader (lib/http/hop-client.ts, pooled per
// origin by lib/http/origin-pools.ts), not node's http client. What node's client did for
// egress the reader must do too, each shown here against an upstream that writes scripted
// bytes on loopback (plain HTTP, or TLS for a routed host): an answer cut off mid-body
// reaches the agent cut off, 1xx heads are read past, HEAD/204/304 have no body whatever
// their headers say, connections are kept alive and one the upstream closed while idle is
// not used again, and request bodies, streamed or chunked, arrive whole.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import http from "node:http";
import net from "node:net";
import tls from "node:tls";
import { after, test } from "node:test";
import { createLogger } from "../../lib/log.ts";
import { mintCa, mintLeaf } from "../../lib/tls/mod.ts";
import { plainVia } from "../../tests/support/raw-http.ts";
import { createEgress } from "./server.ts";

interface Arrival {
  /** The request line ("GET /a"). */
  line: string;
  /** Which connection it came on, from 1. */
  connection: number;
}

/**
 * An upstream that answers each request with what `answer` returns for it (written as
 * given, pieces one write each), ending the connection after it when `close` is set.
 * Requests carry no body here (Content-Length 0 at most).
 */
async function scriptedUpstream(answer: (a: Arrival) => { bytes: (string | Buffer)[]; close?: boolean }, opts: { tls?: { certPem: string; keyPem: string } } = {}) {
  const arrived: Arrival[] = [];
  let connections = 0;
  const closed: Promise<void>[] = [];
  const sockets = new Set<net.Socket>();
  const onSocket = (s: net.Socket) => {
    const connection = ++connections;
    sockets.add(s);
    closed.push(new Promise((r) => s.once("close", () => r())));
    s.on("error", () => {});
    let buf = "";
    s.on("data", (c: Buffer) => {
      buf += c.toString("latin1");
      for (let end = buf.indexOf("\r\n\r\n"); end !== -1; end = buf.indexOf("\r\n\r\n")) {
        const a = { line: buf.slice(0, buf.indexOf(" HTTP/1.1")), connection };
        buf = buf.slice(end + 4);
        arrived.push(a);
        const { bytes, close } = answer(a);
        for (const b of bytes) s.write(b);
        if (close) s.end();
      }
    });
  };
  const server = opts.tls ? tls.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, onSocket) : net.createServer(onSocket);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  // egress's pool keeps its connections open: they go first, or close() would wait on them.
  after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    arrived,
    connections: () => connections,
    /** Resolves once the `n`th connection (from 1) has closed at both ends. */
    closedConnection: (n: number) => closed[n - 1]!,
  };
}

const ca = await mintCa({ commonName: "reader test CA" });
const leaf = await mintLeaf({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, hosts: ["api.reader.test"] });

/** egress in this process with `name` (and api.reader.test, routed, when `routedPort` is given) sent to the upstreams' ports. */
async function startEgress(plain: { name: string; port: number }, routedPort?: number) {
  const resolve = new Map([[plain.name, { host: "127.0.0.1", port: plain.port }]]);
  if (routedPort) resolve.set("api.reader.test", { host: "127.0.0.1", port: routedPort });
  const egress = createEgress({
    routes: { version: 1, routes: routedPort ? [{ host: "api.reader.test", auth: "bearer", header: null, slot: "EGRESS_TOKEN_0" }] : [] },
    env: { EGRESS_TOKEN_0: "real-token-for-the-reader" },
    extraCa: [ca.certPem],
    resolve,
    log: createLogger({ level: "error", write: () => {} }),
  });
  await new Promise<void>((r) => egress.server.listen(0, "127.0.0.1", r));
  after(() => egress.close());
  return (egress.server.address() as net.AddressInfo).port;
}

const ok = (body: string) => `HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

test("an upstream that closes mid-answer: the agent's answer breaks off too, never ends looking whole (chunked, with a length, routed)", async () => {
  const cut = (a: Arrival) => {
    if (a.line.endsWith("/chunked")) return { bytes: ["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n"], close: true };
    if (a.line.endsWith("/length")) return { bytes: ["HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b"], close: true };
    return { bytes: [ok("still here")] };
  };
  const plain = await scriptedUpstream(cut);
  const routed = await scriptedUpstream(cut, { tls: leaf });
  const port = await startEgress({ name: "cut.test", port: plain.port }, routed.port);
  for (const url of ["http://cut.test/chunked", "http://cut.test/length", "https://api.reader.test/chunked", "https://api.reader.test/length"]) {
    const agent = await plainVia(port);
    await assert.rejects(agent.proxyRequest("GET", url), /connection closed while waiting/, `${url}: the agent got an answer that looks whole`);
    agent.socket.destroy();
  }
  const agent = await plainVia(port);
  assert.equal((await agent.proxyRequest("GET", "https://api.reader.test/fine")).body, "still here", "egress carries on");
  agent.socket.destroy();
});

test("1xx heads before the answer are read past and the answer relayed; HEAD, 204 and 304 end at their heads, a transfer coding on the 204 and 304 not relayed (routed or not), all on one kept-alive connection at both ends", async () => {
  const script = (a: Arrival) => {
    switch (a.line) {
      case "GET /early":
        return { bytes: ["HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 103 Early Hints\r\nlink: </style.css>\r\n\r\n", ok("the answer")] };
      case "HEAD /head":
        return { bytes: ["HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n"] };
      case "GET /204":
        return { bytes: ["HTTP/1.1 204 No Content\r\ncontent-length: 10\r\n\r\n"] };
      case "GET /204-chunked":
        return { bytes: ["HTTP/1.1 204 No Content\r\ntransfer-encoding: chunked\r\n\r\n"] };
      case "GET /304":
        return { bytes: ["HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n"] };
      default:
        return { bytes: [ok(`${a.line} on connection ${a.connection}`)] };
    }
  };
  const upstream = await scriptedUpstream(script);
  const routed = await scriptedUpstream(script, { tls: leaf });
  const port = await startEgress({ name: "hints.test", port: upstream.port }, routed.port);
  const agent = await plainVia(port);
  const early = await agent.proxyRequest("GET", "http://hints.test/early");
  assert.deepEqual([early.status, early.body], [200, "the answer"]);
  // node's client for the HEAD (RawHttp would wait for the ten bytes its length names).
  const head = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "HEAD", path: "http://hints.test/head", headers: { host: "hints.test" } }, resolve);
    req.on("error", reject).setTimeout(10_000, () => req.destroy(new Error("HEAD: no answer within 10 s")));
    req.end();
  });
  assert.deepEqual([head.statusCode, head.headers["content-length"]], [200, "10"]);
  head.resume();
  assert.equal((await agent.proxyRequest("GET", "http://hints.test/204")).status, 204);
  for (const url of ["http://hints.test/304", "http://hints.test/204-chunked", "https://api.reader.test/304"]) {
    const res = await agent.proxyRequest("GET", url);
    const path = new URL(url).pathname;
    assert.equal(res.status, Number(path.slice(1, 4)));
    // node's server adds "Connection: close" to a 204 or 304 that names a transfer coding.
    assert.equal(res.headers["transfer-encoding"], undefined, `${url}: a body's framing was relayed on an answer without one`);
    assert.notEqual(res.headers.connection, "close", `${url}: the agent's connection was closed`);
  }
  // The same agent connection, and the same upstream one: each answer left both fit for the next request.
  assert.equal((await agent.proxyRequest("GET", "http://hints.test/last")).body, "GET /last on connection 1");
  agent.socket.destroy();
});

test("a connection the upstream closed while idle is not used again: a POST after it (which cannot go twice) goes on a fresh one", async () => {
  const upstream = await scriptedUpstream((a) => ({ bytes: [ok(`${a.line} on connection ${a.connection}`)], close: a.line === "GET /then-idle-close" }));
  const port = await startEgress({ name: "idle.test", port: upstream.port });
  const agent = await plainVia(port);
  assert.equal((await agent.proxyRequest("GET", "http://idle.test/then-idle-close")).body, "GET /then-idle-close on connection 1");
  // Both ends of it closed: egress has seen the upstream's end by now.
  await upstream.closedConnection(1);
  const post = await agent.proxyRequest("POST", "http://idle.test/once", {}, "");
  assert.deepEqual([post.status, post.body], [200, "POST /once on connection 2"]);
  assert.equal((await agent.proxyRequest("GET", "http://idle.test/again")).body, "GET /again on connection 2", "the fresh one is kept alive");
  assert.deepEqual(upstream.arrived.map((a) => a.line), ["GET /then-idle-close", "POST /once", "GET /again"], "nothing was sent twice");
  agent.socket.destroy();
});

test("request bodies reach the upstream whole: 3 MiB on a connection still being dialed (held, paused, then streamed), and a chunked upload in pieces", async () => {
  const seen: { te?: string; length?: string; bytes: number; sha: string }[] = [];
  const upstream = http.createServer((req, res) => {
    const hash = createHash("sha256");
    let bytes = 0;
    req.on("data", (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
    });
    req.on("end", () => {
      seen.push({ te: req.headers["transfer-encoding"], length: req.headers["content-length"], bytes, sha: hash.digest("hex") });
      res.end("stored");
    });
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  after(() => {
    upstream.closeAllConnections();
    return new Promise<void>((r) => upstream.close(() => r()));
  });
  const port = await startEgress({ name: "upload.test", port: (upstream.address() as net.AddressInfo).port });

  // The first request to the origin: its connection is dialed while the body comes in,
  // more of it than egress holds for a connection not yet open.
  const big = Buffer.alloc(3 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 12)) & 0xff;
  const agent = await plainVia(port);
  const put = await agent.proxyRequest("PUT", "http://upload.test/big", {}, big);
  assert.deepEqual([put.status, put.body], [200, "stored"]);
  assert.deepEqual(seen[0], { te: undefined, length: String(big.length), bytes: big.length, sha: createHash("sha256").update(big).digest("hex") });
  agent.socket.destroy();

  // Chunked, written in three pieces as the agent would stream it.
  const pieces = ["first piece, ", "second, ", "and the last"];
  const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "PUT", path: "http://upload.test/chunked", headers: { host: "upload.test", "transfer-encoding": "chunked" } }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    for (const p of pieces) req.write(p);
    req.end();
  });
  assert.deepEqual(chunked, { status: 200, body: "stored" });
  const whole = Buffer.from(pieces.join(""));
  assert.deepEqual(seen[1], { te: "chunked", length: undefined, bytes: whole.length, sha: createHash("sha256").update(whole).digest("hex") });
});
