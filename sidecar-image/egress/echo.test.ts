// An upstream that hands the injected credential back (echoing request headers, quoting
// them in an error, a WebSocket echo) must not give the agent the real token: egress masks
// every spelling it sent, in headers and bodies, split across chunks, decoded when the
// upstream compresses anyway. Real processes on 127.0.0.1: egress against a fake HTTPS
// upstream with its own test CA, and the firewall in front for the whole-chain case.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import http from "node:http";
import https from "node:https";
import type net from "node:net";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import zlib from "node:zlib";
import { mintCa, mintLeaf } from "../../lib/tls/mod.ts";
import { httpsVia, plainVia } from "../../tests/support/raw-http.ts";
import { wsFrame } from "../../tests/support/ws-frame.mjs";
import { startChain } from "./testdata/chain.ts";

const BEARER = "real-bearer-token-0123456789";
const BASIC = "real-basic-token-9876543210";
const BASIC_B64 = Buffer.from(`x-access-token:${BASIC}`).toString("base64");
const NAMES = ["api.example.test", "git.example.test", "open.example.test"];

const bottleCa = await mintCa({ commonName: "test bottle CA" });
const upstreamCa = await mintCa({ commonName: "test upstream CA" });
const leaf = await mintLeaf({ caCertPem: upstreamCa.certPem, caKeyPem: upstreamCa.keyPem, hosts: NAMES });

const acceptEncodings: string[] = [];
const upstream = https.createServer({ cert: leaf.certPem, key: leaf.keyPem, maxHeaderSize: 64 * 1024 }, async (req, res) => {
  req.resume();
  const auth = req.headers.authorization ?? "";
  acceptEncodings.push(req.headers["accept-encoding"] ?? "(none)");
  const echo = `{"you sent":${JSON.stringify(auth)}}`;
  switch (req.url) {
    case "/headers":
      res.writeHead(401, { "content-type": "application/json", "www-authenticate": `invalid credential ${auth}`, "content-length": Buffer.byteLength(echo) });
      return void res.end(echo);
    case "/split": {
      // The credential arrives in two writes, 30 ms apart: two chunks at egress.
      const cut = Math.floor(auth.length / 2);
      res.writeHead(200, { "content-type": "text/plain" });
      res.write(`before ${auth.slice(0, cut)}`);
      await sleep(30);
      return void res.end(`${auth.slice(cut)} after`);
    }
    case "/split-length": {
      // The same with a Content-Length: egress masks it on its way straight to the socket (lib/http/direct-body.ts).
      const cut = Math.floor(auth.length / 2);
      const text = `before ${auth} after`;
      res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(text) });
      res.write(`before ${auth.slice(0, cut)}`);
      await sleep(30);
      return void res.end(`${auth.slice(cut)} after`);
    }
    case "/gzip": // ignores the identity egress asked for
      res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" });
      return void res.end(req.method === "HEAD" ? undefined : zlib.gzipSync(echo));
    case "/gzip-corrupt":
      res.writeHead(200, { "content-encoding": "gzip" });
      return void res.end(Buffer.from("this is not gzip at all"));
    case "/gzip-304":
      res.writeHead(304, { "content-encoding": "gzip", etag: '"v1"' });
      return void res.end();
    case "/zstd":
      res.writeHead(200, { "content-encoding": "zstd" });
      return void res.end(Buffer.from("not really zstd"));
    case "/reason": // the credential in the reason phrase and in a header's name
      res.writeHead(401, `Rejected ${auth}`, { [`x-echo-${auth.split(" ")[1]}`]: "1", "content-length": 0 });
      return void res.end();
    case "/status-099": // a status line node parses but will not write back out
      return void req.socket.end("HTTP/1.1 099 Odd\r\ncontent-length: 0\r\n\r\n");
    case "/te-gzip": { // a transfer coding node does not undo: the agent would gunzip it
      const gz = zlib.gzipSync(echo);
      return void req.socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n${gz.length.toString(16)}\r\n`), gz, Buffer.from("\r\n0\r\n\r\n")]));
    }
    case "/range": { // an echo that honours Range: a slice of it would be no whole credential
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
      if (!m) {
        res.writeHead(200, { "content-length": Buffer.byteLength(echo), "accept-ranges": "bytes" });
        return void res.end(echo);
      }
      const part = Buffer.from(echo).subarray(Number(m[1]), Number(m[2]) + 1);
      res.writeHead(206, { "content-range": `bytes ${m[1]}-${m[2]}/${Buffer.byteLength(echo)}`, "content-length": part.length });
      return void res.end(part);
    }
    case "/sse": // one event, then the stream stays open until the client leaves
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: first event\n\n");
      return;
    default:
      res.writeHead(404);
      res.end();
  }
});
// A WebSocket that greets with the Authorization header it received.
upstream.on("upgrade", (req: http.IncomingMessage, socket: net.Socket) => {
  socket.on("error", () => {});
  if (req.url === "/ws-declined-cut") {
    // A refusal echoing the credential, whose connection dies in the middle of its body.
    const echo = `you sent ${req.headers.authorization}`;
    socket.write(`HTTP/1.1 401 Unauthorized\r\nwww-authenticate: invalid ${req.headers.authorization}\r\ntransfer-encoding: chunked\r\n\r\n`);
    return void socket.end(`${Buffer.byteLength(echo).toString(16)}\r\n${echo}\r\n`, () => socket.destroy());
  }
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nx-seen: ${req.headers.authorization}\r\nx-extensions: ${req.headers["sec-websocket-extensions"] ?? "(none)"}\r\n\r\n`);
  const greeting = `hello, ${req.headers.authorization}`;
  if (req.url === "/ws-split") {
    // The greeting in two fragments, cut inside the credential.
    const cut = greeting.length - 10;
    socket.write(Buffer.concat([wsFrame(greeting.slice(0, cut), false, { fin: false }), wsFrame(greeting.slice(cut), false, { opcode: 0 })]));
  } else socket.write(wsFrame(greeting, false));
});
const { egressPort, fwPort } = await startChain({
  upstream,
  upstreamCa,
  bottleCa,
  names: NAMES,
  env: { EGRESS_TOKEN_0: BEARER, EGRESS_TOKEN_1: BASIC },
  routes: [
    { host: "api.example.test", auth: "bearer", header: null, slot: "EGRESS_TOKEN_0" },
    { host: "git.example.test", auth: "basic", header: null, slot: "EGRESS_TOKEN_1" },
  ],
  hosts: [{ host: "api.example.test", tlsPassthrough: false, routed: true, replacedHeaders: ["authorization", "x-api-key"] }],
});

/** One request written straight to egress in absolute form, as the firewall sends it. */
async function viaEgress(url: string, headers: Record<string, string> = {}) {
  const c = await plainVia(egressPort);
  try {
    return await c.proxyRequest("GET", url, { authorization: "Bearer placeholder", "accept-encoding": "gzip, br", connection: "close", ...headers });
  } finally {
    c.socket.destroy();
  }
}

const leaks = (text: string) => [BEARER, BASIC, BASIC_B64].filter((s) => text.includes(s));

test("an upstream echoing the injected credential in headers and body hands back a mask of the same length", async () => {
  const r = await viaEgress("https://api.example.test/headers");
  assert.equal(r.status, 401);
  assert.deepEqual(leaks(JSON.stringify(r)), [], "the real bearer token reached the agent");
  assert.match(r.headers["www-authenticate"]!, /^invalid credential Bearer \[egress-redacted\]/);
  assert.equal(Number(r.headers["content-length"]), Buffer.byteLength(r.body), "Content-Length still matches the body");
  assert.equal(JSON.parse(r.body)["you sent"].length, `Bearer ${BEARER}`.length);

  const basic = await viaEgress("https://git.example.test/headers");
  assert.deepEqual(leaks(JSON.stringify(basic)), [], "basic auth's base64 form reached the agent");
  assert.match(JSON.parse(basic.body)["you sent"], /^Basic \[egress-redacted\]/);
});

test("a routed request's Range is dropped: an echo cut into slices would hand the credential over piece by piece", async () => {
  const start = '{"you sent":"Bearer '.length;
  const halves = [`bytes=${start}-${start + 13}`, `bytes=${start + 14}-${start + BEARER.length - 1}`];
  const got = await Promise.all(halves.map((range) => viaEgress("https://api.example.test/range", { range, "if-range": "*" })));
  for (const r of got) {
    assert.equal(r.status, 200, "the whole answer, as if no Range had been asked for");
    assert.deepEqual(leaks(r.body), []);
    assert.ok(!r.body.includes(BEARER.slice(0, 14)) && !r.body.includes(BEARER.slice(14)), `a piece of the credential came back: ${r.body}`);
  }
});

test("the credential split across two chunks is masked, the text around it untouched", async () => {
  const r = await viaEgress("https://api.example.test/split");
  assert.equal(r.status, 200);
  assert.deepEqual(leaks(r.body), []);
  assert.match(r.body, /^before Bearer \[egress-redacted\]\S* after$/);
  assert.equal(r.body.length, `before Bearer ${BEARER} after`.length);
});

test("the credential split across two chunks of an answer with a Content-Length is masked too, the length kept", async () => {
  const r = await viaEgress("https://api.example.test/split-length");
  assert.equal(r.status, 200);
  assert.deepEqual(leaks(r.body), []);
  assert.match(r.body, /^before Bearer \[egress-redacted\]\S* after$/);
  assert.equal(Number(r.headers["content-length"]), Buffer.byteLength(r.body));
});

test("routed requests ask for identity; an upstream that gzips anyway is decoded and masked, an encoding egress cannot read is refused", async () => {
  const before = acceptEncodings.length;
  const r = await viaEgress("https://api.example.test/gzip");
  assert.equal(acceptEncodings[before], "identity", "egress replaced the agent's accept-encoding");
  assert.equal(r.status, 200);
  assert.equal(r.headers["content-encoding"], undefined, "the decoded body goes on unencoded");
  assert.deepEqual(leaks(r.body), []);
  assert.match(JSON.parse(r.body)["you sent"], /^Bearer \[egress-redacted\]/);

  // Answers without a body keep their encoding header and are not fed to a decoder.
  for (const [method, path, status] of [["HEAD", "/gzip", 200], ["GET", "/gzip-304", 304]] as const) {
    const head = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port: egressPort, method, path: `https://api.example.test${path}`, headers: { host: "api.example.test" } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res));
        res.on("error", reject);
      });
      req.on("error", reject).setTimeout(5_000, () => req.destroy(new Error(`${method} ${path}: no complete answer within 5 s`)));
      req.end();
    });
    assert.equal(head.statusCode, status, `${method} ${path}`);
    assert.equal(head.headers["content-encoding"], "gzip", `${method} ${path}`);
  }

  // A body that does not decode is cut off; egress itself carries on.
  await assert.rejects(viaEgress("https://api.example.test/gzip-corrupt"), /connection closed/);
  assert.equal((await viaEgress("https://api.example.test/gzip")).status, 200, "egress survived the corrupt body");

  const z = await viaEgress("https://api.example.test/zstd");
  assert.equal(z.status, 502);
  assert.match(z.body, /content-encoding zstd, which egress cannot search for the injected credential/);

  // Control: an unrouted host's answer is passed as sent, its encoding kept.
  const open = await viaEgress("https://open.example.test/gzip");
  assert.equal(open.headers["content-encoding"], "gzip");
  assert.equal(acceptEncodings.at(-1), "gzip, br");
});

test("neither the reason phrase nor a header name carries the credential back", async () => {
  const r = await viaEgress("https://api.example.test/reason");
  assert.equal(r.statusLine, "HTTP/1.1 401 Unauthorized", "the upstream's own phrase is replaced by the standard one");
  assert.deepEqual(leaks(JSON.stringify(r).toLowerCase()), [], "the token reached the agent");
  assert.ok(!Object.keys(r.headers).some((k) => k.startsWith("x-echo-")), "the header named after the token was dropped");
});

test("an answer egress cannot relay or search (status 099, transfer-encoding gzip) is a 502, and egress carries on", async () => {
  const odd = await viaEgress("https://api.example.test/status-099");
  assert.equal(odd.status, 502);
  assert.match(odd.body, /https:\/\/api\.example\.test sent an answer egress cannot relay: status 99 is not a valid HTTP status/);
  const unrouted = await viaEgress("https://open.example.test/status-099");
  assert.equal(unrouted.status, 502, "an unrouted host's bad status is refused the same way");

  const te = await viaEgress("https://api.example.test/te-gzip");
  assert.equal(te.status, 502);
  assert.match(te.body, /https:\/\/api\.example\.test sent an unsupported transfer-encoding "gzip, chunked"/);
  assert.equal((await viaEgress("https://api.example.test/gzip")).status, 200, "egress is still up");
});

test("a streamed answer is not held back: the first event arrives while the upstream keeps the stream open", async () => {
  const first = await new Promise<string>((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port: egressPort, path: "https://api.example.test/sse", headers: { host: "api.example.test" } }, (res) => {
      res.once("data", (c: Buffer) => {
        resolve(c.toString());
        req.destroy();
      });
    });
    req.on("error", reject);
    req.setTimeout(5_000, () => req.destroy(new Error("no event within 5 s: egress held the stream back")));
  });
  assert.equal(first, "data: first event\n\n");
});

/** A WebSocket upgrade to api.example.test written straight to egress; its answer's head. */
function wsUpgrade(c: Awaited<ReturnType<typeof plainVia>>, path: string, extraHeaders = "") {
  c.socket.write(
    `GET https://api.example.test${path} HTTP/1.1\r\nHost: api.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extraHeaders}Authorization: Bearer placeholder\r\n\r\n`,
  );
  return c.readResponse();
}

test("a WebSocket on a routed host gets the credential masked in the 101 and in frames, with compression kept off", async () => {
  const c = await plainVia(egressPort);
  try {
    const head = await wsUpgrade(c, "/ws", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    assert.equal(head.status, 101);
    assert.equal(head.headers["x-extensions"], "(none)", "the agent's permessage-deflate offer reached the upstream");
    assert.match(head.headers["x-seen"]!, /^Bearer \[egress-redacted\]/);
    const frame = await c.readWsFrame();
    assert.deepEqual(leaks(frame.payload.toString()), []);
    assert.equal(frame.payload.length, `hello, Bearer ${BEARER}`.length, "the frame kept its length");
  } finally {
    c.socket.destroy();
  }
});

test("a WebSocket message whose fragments split the credential reaches the agent masked", async () => {
  const c = await plainVia(egressPort);
  try {
    assert.equal((await wsUpgrade(c, "/ws-split")).status, 101);
    const message = (await c.readWsFrame()).payload.toString() + (await c.readWsFrame()).payload.toString();
    assert.deepEqual(leaks(message), [], "the reassembled message carries the real token");
    assert.match(message, /^hello, Bearer \[egress-redacted\]/);
  } finally {
    c.socket.destroy();
  }
});

test("a routed WebSocket upgrade the upstream declines: its answer is masked, and an upstream that dies in the middle of it closes the agent's connection", async () => {
  const c = await plainVia(egressPort);
  try {
    const r = await wsUpgrade(c, "/ws-declined-cut"); // unframed: read until egress closes
    assert.equal(r.status, 401);
    assert.deepEqual(leaks(JSON.stringify(r)), [], "the real bearer token reached the agent");
    assert.match(r.headers["www-authenticate"]!, /^invalid Bearer \[egress-redacted\]/);
    assert.match(r.body, /^you sent Bearer \[egress-redacted\]/);
    assert.ok(c.closed, "egress held the agent's connection open after the upstream's died");
  } finally {
    c.socket.destroy();
  }
});

test("through the whole chain (firewall, egress, upstream) the agent sees only the mask", async () => {
  const c = await httpsVia(fwPort, "api.example.test", bottleCa.certPem);
  try {
    const r = await c.request("GET", "/headers", { host: "api.example.test", authorization: "Bearer placeholder" });
    assert.equal(r.status, 401);
    assert.deepEqual(leaks(JSON.stringify(r)), []);
    assert.match(JSON.parse(r.body)["you sent"], /^Bearer \[egress-redacted\]/);
  } finally {
    c.socket.destroy();
  }
});

test("a request head the firewall accepts (a 20 KB cookie) egress accepts too", async () => {
  const c = await httpsVia(fwPort, "api.example.test", bottleCa.certPem);
  try {
    const r = await c.request("GET", "/nothing-here", { host: "api.example.test", cookie: `session=${"a".repeat(20_000)}` });
    assert.equal(r.status, 404, `the upstream's own answer, not egress's 431: ${r.status} ${r.body}`);
  } finally {
    c.socket.destroy();
  }
});
