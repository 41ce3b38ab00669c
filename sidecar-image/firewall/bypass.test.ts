// Attacks on the firewall by an agent that controls every byte it sends: request framing
// tricks, targets that name another host, host spellings, ports, pipelining, encodings
// that hide a secret from the scanner. Real sockets and real TLS on loopback; "evil"
// names resolve to the same fake upstreams, so anything that leaked would be recorded.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import tls from "node:tls";
import { test } from "node:test";
import zlib from "node:zlib";
import { createLogger } from "../../lib/log.ts";
import { mintCa, mintLeaf } from "../../lib/tls/mod.ts";
import { connectTunnel, httpsVia, plainVia, RawHttp, tlsOver } from "../../tests/support/raw-http.ts";
import { firewallPool, policyOf, type Recorded, startUpstream } from "./test-harness.ts";

const bottleCa = await mintCa({ commonName: "test bottle CA" });
const upstreamCa = await mintCa({ commonName: "test upstream CA" });
const TLS_NAMES = ["api.example.test", "eighty.example.test", "evil.test", "x.wild.test"];
const upstream = await startUpstream({ tls: await mintLeaf({ caCertPem: upstreamCa.certPem, caKeyPem: upstreamCa.keyPem, hosts: TLS_NAMES }) });
const plainUpstream = await startUpstream();
const resolve = new Map(TLS_NAMES.map((h) => [h, { host: "127.0.0.1", port: upstream.port }]));
for (const h of ["plain.example.test", "evilplain.test"]) resolve.set(h, { host: "127.0.0.1", port: plainUpstream.port });
resolve.set("127.0.0.1", { host: "127.0.0.1", port: upstream.port });

const POLICY = policyOf(["api.example.test", "plain.example.test", { host: "eighty.example.test", tlsPassthrough: false, ports: [80] }]);

const startFirewall = firewallPool({ policy: POLICY, ca: bottleCa, upstreamCa: [upstreamCa.certPem], resolve, log: createLogger({ level: "error" }) }, [upstream, plainUpstream]);
const port = await startFirewall();

const AWS_ID = "AKIAIOSFODNN7EXAMPLF";
const H = { host: "api.example.test" };
const everything = (): Recorded[] => [...upstream.requests, ...plainUpstream.requests];
const mentions = (r: Recorded, text: string) => JSON.stringify(r).includes(text);

/** Write raw bytes, then collect what comes back until the peer closes or goes quiet. */
async function exchange(socket: net.Socket, bytes: string | Buffer, quietMs = 250): Promise<string> {
  let got = "";
  let timer: ReturnType<typeof setTimeout>;
  const done = new Promise<void>((r) => {
    const arm = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(r, ms);
    };
    socket.on("data", (c: Buffer) => {
      got += c.toString("latin1");
      arm(quietMs);
    });
    socket.once("close", () => r());
    socket.on("error", () => r());
    arm(3000);
  });
  socket.write(bytes);
  await done;
  clearTimeout(timer!);
  socket.destroy();
  return got;
}

const statuses = (raw: string) => [...raw.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));

async function apiTunnel(p = port): Promise<net.Socket> {
  const t = await connectTunnel(p, "api.example.test:443");
  assert.ok("socket" in t, "CONNECT api.example.test refused");
  return tlsOver(t.socket, "api.example.test", bottleCa.certPem);
}

function dialProxy(p = port): Promise<net.Socket> {
  return new Promise((r, j) => {
    const s = net.connect(p, "127.0.0.1", () => r(s));
    s.once("error", j);
  });
}

test("framing tricks (TE with CL, repeated or listed CL, obs-fold, bare LF, odd Transfer-Encoding, an HTTP/2 preface) never get a request past the scan", async () => {
  const smuggled = `GET /smuggled HTTP/1.1\r\nHost: api.example.test\r\nx-k: ${AWS_ID}\r\n\r\n`;
  const cases: Record<string, (target: string) => string> = {
    "TE and CL": (t) => `POST ${t} HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    "CL and TE": (t) => `POST ${t} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: ${smuggled.length + 5}\r\n\r\n0\r\n\r\n${smuggled}`,
    "two CLs": (t) => `POST ${t} HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
    "listed CL": (t) => `POST ${t} HTTP/1.1\r\nHost: h\r\nContent-Length: 0, ${smuggled.length}\r\n\r\n${smuggled}`,
    "folded TE": (t) => `POST ${t} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${smuggled}`,
    "folded secret": (t) => `GET ${t} HTTP/1.1\r\nHost: h\r\nx-a: ${AWS_ID.slice(0, 10)}\r\n ${AWS_ID.slice(10)}\r\n\r\n`,
    "xchunked TE": (t) => `POST ${t} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${smuggled}`,
    "chunked not last": (t) => `POST ${t} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${smuggled}`,
    "bare LF": (t) => `GET ${t} HTTP/1.1\nHost: h\nx-k: ${AWS_ID}\n\n`,
    "bare LF in CL line": (t) => `POST ${t} HTTP/1.1\r\nHost: h\r\nContent-Length: 0\nx: y\r\n\r\n${smuggled}`,
    "space before colon": (t) => `GET ${t} HTTP/1.1\r\nHost: h\r\nx-k : ${AWS_ID}\r\n\r\n`,
    "NUL in a value": (t) => `GET ${t} HTTP/1.1\r\nHost: h\r\nx-k: a\x00${AWS_ID}\r\n\r\n`,
    "secret as method": (t) => `${AWS_ID} ${t} HTTP/1.1\r\nHost: h\r\n\r\n`,
    "HTTP/2 preface": () => `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`,
  };
  for (const [name, make] of Object.entries(cases)) {
    for (const [where, connect, target] of [
      ["tunnel", () => apiTunnel(), "/a"],
      ["proxy port", () => dialProxy(), "http://plain.example.test/a"],
    ] as const) {
      const before = everything().length;
      const got = await exchange(await connect(), make(target));
      assert.ok(!statuses(got).includes(200), `${name} (${where}) got a 200: ${JSON.stringify(got.slice(0, 200))}`);
      assert.deepEqual(everything().slice(before), [], `${name} (${where}) reached the upstream`);
    }
  }
  assert.ok(!everything().some((r) => mentions(r, AWS_ID) || r.url === "/smuggled"));
});

test("a secret in a chunk extension or a request trailer is never forwarded: the body is re-framed", async () => {
  for (const raw of [
    `POST /ext HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;x=${AWS_ID}\r\nhello\r\n0\r\n\r\n`,
    `POST /trailer HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: x-t\r\n\r\n5\r\nhello\r\n0\r\nx-t: ${AWS_ID}\r\n\r\n`,
  ]) {
    const got = await exchange(await apiTunnel(), raw);
    assert.deepEqual(statuses(got), [200]);
    const seen = upstream.requests.at(-1)!;
    assert.equal(seen.body, "hello");
    assert.equal(seen.headers["content-length"], "5");
    assert.ok(!mentions(seen, AWS_ID), "the secret reached the upstream");
  }
});

test("a request inside a tunnel goes to the tunnel's host whatever it names: absolute-form, //host path, HTTP/1.0 without Host; CONNECT in a tunnel opens nothing", async () => {
  const before = upstream.requests.length;
  for (const [raw, path] of [
    ["GET https://evil.test/abs HTTP/1.1\r\nHost: evil.test\r\n\r\n", "/abs"],
    ["GET http://evil.test:8443/abs2 HTTP/1.1\r\nHost: evil.test:8443\r\n\r\n", "/abs2"],
    ["GET //evil.test/x HTTP/1.1\r\nHost: evil.test\r\n\r\n", "//evil.test/x"],
    ["GET /h10 HTTP/1.0\r\n\r\n", "/h10"],
  ]) {
    assert.deepEqual(statuses(await exchange(await apiTunnel(), raw!)), [200], raw);
    const seen = upstream.requests.at(-1)!;
    assert.equal(seen.url, path);
    assert.equal(seen.headers.host, "api.example.test");
  }
  const inner = await exchange(await apiTunnel(), "CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n");
  assert.ok(!inner.includes("200"), `CONNECT inside a tunnel answered ${JSON.stringify(inner)}`);
  assert.equal(upstream.requests.length, before + 4);
  assert.ok(!everything().some((r) => String(r.headers.host).startsWith("evil")));
});

test("host spellings are normalized before the gate, and the dial uses the name that was gated", async () => {
  for (const target of ["API.EXAMPLE.TEST:443", "api.example.test.:443", "api%2Eexample.test:443", "api.example.test:0443"]) {
    const t = await connectTunnel(port, target);
    assert.ok("socket" in t, `${target} refused`);
    const c = new RawHttp(await tlsOver(t.socket, "api.example.test", bottleCa.certPem));
    assert.equal((await c.request("GET", "/spelled", H)).status, 200, target);
    assert.equal(upstream.requests.at(-1)!.headers.host, "api.example.test");
    c.socket.destroy();
  }
  const refused: [string, number][] = [
    ["evil.test.:443", 403],
    ["EVIL.TEST:443", 403],
    ["evil%2Etest:443", 403],
    ["2130706433:443", 403],
    ["[::ffff:127.0.0.1]:443", 403],
    ["user@api.example.test:443", 400],
    ["api.example.test@evil.test:443", 400],
    ["evil.test#.api.example.test:443", 400],
    ["api.example.test:443?evil.test", 400],
    ["api.example.test/.evil.test:443", 400],
  ];
  for (const [target, status] of refused) {
    const t = await connectTunnel(port, target);
    assert.ok("refused" in t, `CONNECT ${target} was let through`);
    assert.equal(t.refused.status, status, `${target}: ${t.refused.body}`);
  }
  // A connection each: one the parser gives up on is answered and closed.
  for (const url of ["http://plain.example.test\\@evilplain.test/", "http://evilplain.test\\@plain.example.test/", "http://a:b@plain.example.test/", "http://evilplain%2Etest/"]) {
    const c = await plainVia(port);
    const res = await c.request("GET", url, { host: "plain.example.test" });
    assert.ok(res.status === 400 || res.status === 403, `${url}: ${res.status}`);
    c.socket.destroy();
  }
  assert.ok(!everything().some((r) => String(r.headers.host).startsWith("evil")));
});

test("in an intercepted tunnel the CONNECT authority picks the host, whatever the TLS SNI or a Host with another port names; IPv6 spellings of a refused address are refused", async () => {
  const t = await connectTunnel(port, "api.example.test:443");
  assert.ok("socket" in t);
  // The client asks for evil.test in its SNI (and gets a leaf for the CONNECT's host, which it is told to accept).
  const s = await new Promise<tls.TLSSocket>((ok, fail) => {
    const sock = tls.connect({ socket: t.socket, servername: "evil.test", ca: bottleCa.certPem, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] }, () => ok(sock));
    sock.once("error", fail);
  });
  const c = new RawHttp(s);
  for (const host of ["evil.test", "evil.test:8443", "api.example.test:8443"]) {
    assert.equal((await c.request("GET", "/sni", { host })).status, 200, host);
    assert.equal(upstream.requests.at(-1)!.headers.host, "api.example.test", host);
  }
  c.socket.destroy();
  for (const target of ["[::127.0.0.1]:443", "[::ffff:7f00:1]:443", "[0:0:0:0:0:ffff:127.0.0.1]:443", "0x7f000001:443", "017700000001:443"]) {
    const r = await connectTunnel(port, target);
    assert.ok("refused" in r && r.refused.status === 403, `CONNECT ${target} was let through`);
  }
  assert.ok(!everything().some((r) => String(r.headers.host).startsWith("evil")));
});

test("a key id in a host name under a *.suffix rule is refused though host names arrive lower-cased", async () => {
  const p = await startFirewall({ policy: policyOf(["*.wild.test"]) });
  for (const target of [`${AWS_ID}.wild.test:443`, `x.${AWS_ID.toLowerCase()}.wild.test:443`]) {
    const t = await connectTunnel(p, target);
    assert.ok("refused" in t, `CONNECT ${target} was let through`);
    assert.match(t.refused.body, /blocked request to \(redacted host name\): detector aws matched in host name/);
  }
  const c = await plainVia(p);
  const res = await c.request("GET", `http://${AWS_ID.toLowerCase()}.wild.test/`, { host: "x.wild.test" });
  assert.equal(res.status, 403);
  assert.match(res.body, /detector aws matched in host name/);
  c.socket.destroy();
  // In a tunnel to an allowed name, neither the SNI nor the Host header goes on: the CONNECT's name does.
  const t = await connectTunnel(p, "x.wild.test:443");
  assert.ok("socket" in t);
  const s = await new Promise<tls.TLSSocket>((ok, fail) => {
    const sock = tls.connect({ socket: t.socket, servername: `${AWS_ID.toLowerCase()}.wild.test`, ca: bottleCa.certPem, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] }, () => ok(sock));
    sock.once("error", fail);
  });
  const inside = new RawHttp(s);
  assert.equal((await inside.request("GET", "/label", { host: `${AWS_ID}.wild.test` })).status, 200);
  assert.equal(upstream.requests.at(-1)!.headers.host, "x.wild.test");
  assert.ok(!everything().some((r) => mentions(r, AWS_ID) || mentions(r, AWS_ID.toLowerCase())));
  inside.socket.destroy();
});

test("a *.suffix rule never matches an IP address, however the address is spelled", async () => {
  const p = await startFirewall({ policy: policyOf(["*.0.0.1", "*.1"]) });
  for (const target of ["127.0.0.1:443", "2130706433:443", "0x7f.0.0.1:443", "127.1:443", "0177.0.0.1:443"]) {
    const t = await connectTunnel(p, target);
    assert.ok("refused" in t, `CONNECT ${target} was let through`);
    assert.equal(t.refused.status, 403);
    assert.match(t.refused.body, /blocked request to 127\.0\.0\.1: host is not in this bottle's allowlist/);
  }
});

test("an explicit port that is the other scheme's default is kept: CONNECT host:80 and https://host:80/ are gated and dialed on 80", async () => {
  const t = await connectTunnel(port, "eighty.example.test:80");
  assert.ok("socket" in t, `CONNECT eighty.example.test:80 refused: ${"refused" in t ? t.refused.body : ""}`);
  const c = new RawHttp(await tlsOver(t.socket, "eighty.example.test", bottleCa.certPem));
  assert.equal((await c.request("GET", "/in-tunnel", { host: "eighty.example.test" })).status, 200);
  assert.equal(upstream.requests.at(-1)!.headers.host, "eighty.example.test:80");
  c.socket.destroy();

  const d = await plainVia(port);
  assert.equal((await d.request("GET", "https://eighty.example.test:80/abs", { host: "eighty.example.test:80" })).status, 200);
  assert.equal(upstream.requests.at(-1)!.headers.host, "eighty.example.test:80");
  const not443 = await d.request("GET", "https://eighty.example.test/abs", { host: "eighty.example.test" });
  assert.equal(not443.status, 403);
  assert.match(not443.body, /port 443 is not allowed for eighty\.example\.test/);
  d.socket.destroy();
});

test("pipelined requests on one proxy connection are each gated, and a CONNECT pipelined behind them to a refused host opens nothing", async () => {
  const before = plainUpstream.requests.length;
  const got = await exchange(
    await dialProxy(),
    "GET http://plain.example.test/ok HTTP/1.1\r\nHost: plain.example.test\r\n\r\n" +
      "GET http://evilplain.test/no HTTP/1.1\r\nHost: evilplain.test\r\n\r\n" +
      "GET http://plain.example.test/ok2 HTTP/1.1\r\nHost: plain.example.test\r\n\r\n",
  );
  assert.deepEqual(statuses(got), [200, 403, 200]);
  const connect = await exchange(await dialProxy(), "GET http://plain.example.test/ok3 HTTP/1.1\r\nHost: plain.example.test\r\n\r\nCONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n");
  assert.match(connect, /blocked request to evil\.test: host is not in this bottle's allowlist/);
  assert.ok(!connect.includes("Connection Established"));
  assert.deepEqual(plainUpstream.requests.slice(before).map((r) => `${r.headers.host}${r.url}`), ["plain.example.test/ok", "plain.example.test/ok2", "plain.example.test/ok3"]);
  assert.ok(!everything().some((r) => String(r.headers.host).startsWith("evil")));
});

test("Expect: 100-continue does not let a body past the scan; other expectations get 417", async () => {
  const before = everything().length;
  const cont = await exchange(await apiTunnel(), `POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: ${AWS_ID.length}\r\n\r\n${AWS_ID}`);
  assert.deepEqual(statuses(cont), [100, 403]);
  assert.match(cont, /detector aws matched in body/);
  const other = await exchange(await apiTunnel(), `POST /e HTTP/1.1\r\nHost: h\r\nExpect: foo\r\nContent-Length: 5\r\n\r\nhello`);
  assert.deepEqual(statuses(other), [417]);
  assert.deepEqual(everything().slice(before), []);
});

test("a compressed body is scanned decoded and as sent: nested codings, a hidden Content-Encoding; bytes after the compressed data and a bomb are refused", async () => {
  const c = await httpsVia(port, "api.example.test", bottleCa.certPem);
  const tail = Buffer.from(` key=${AWS_ID}`);
  const before = upstream.requests.length;
  const cases: [string, Record<string, string>, Buffer, RegExp][] = [
    ["gzip then br", { "content-encoding": "gzip, br" }, zlib.brotliCompressSync(zlib.gzipSync(`key=${AWS_ID}`)), /detector aws matched in body/],
    ["Connection hides the coding", { "content-encoding": "gzip", connection: "content-encoding" }, zlib.gzipSync(`key=${AWS_ID}`), /detector aws matched in body/],
    // Decoders differ past the end of the data: node's gunzip stops at zero padding between
    // two members, Python's reads on into the second one.
    ["plaintext after deflate", { "content-encoding": "deflate" }, Buffer.concat([zlib.deflateSync("harmless"), tail]), /has 25 bytes after its deflate data/],
    ["plaintext after brotli", { "content-encoding": "br" }, Buffer.concat([zlib.brotliCompressSync("harmless"), tail]), /has 25 bytes after its br data/],
    ["a second gzip member after zero padding", { "content-encoding": "gzip" }, Buffer.concat([zlib.gzipSync("harmless"), Buffer.alloc(8), zlib.gzipSync(tail)]), /bytes after its gzip data, which servers read differently/],
  ];
  for (const [name, headers, body, reason] of cases) {
    const res = await c.request("POST", "/z", { ...H, ...headers }, body);
    assert.equal(res.status, 403, `${name}: ${res.body}`);
    assert.match(res.body, reason, name);
  }
  const members = await c.request("POST", "/z", { ...H, "content-encoding": "gzip" }, Buffer.concat([zlib.gzipSync("harmless"), zlib.gzipSync(tail)]));
  assert.match(members.body, /detector aws matched in body/, "two gzip members back to back are read whole");
  const bomb = await c.request("POST", "/z", { ...H, "content-encoding": "gzip" }, zlib.gzipSync(Buffer.alloc(65 * 1024 * 1024)));
  assert.equal(bomb.status, 413);
  assert.match(bomb.body, /inflates to over 64 MiB/);
  assert.equal(upstream.requests.length, before, "a blocked body reached the upstream");
  const ok = await c.request("POST", "/z", { ...H, "content-encoding": "deflate" }, zlib.deflateSync("harmless"));
  assert.equal(ok.status, 200, "a clean compressed body still passes");
  c.socket.destroy();
});

test("a body sent with a transfer coding besides chunked (Transfer-Encoding: gzip, chunked) is refused: forwarded with a length, the server would get it still compressed", async () => {
  const chunked = (te: string, body: Buffer) =>
    Buffer.concat([Buffer.from(`POST /te HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: ${te}\r\n\r\n${body.length.toString(16)}\r\n`), body, Buffer.from("\r\n0\r\n\r\n")]);
  const key = `{"note":"${AWS_ID}"}`;
  const before = upstream.requests.length;
  for (const [te, body] of [
    ["gzip, chunked", zlib.gzipSync(key)],
    ["x-gzip, chunked", zlib.gzipSync(key)],
    ["deflate, chunked", zlib.deflateSync(key)],
    ["GZIP , chunked", zlib.gzipSync(key)],
    ["gzip, deflate, chunked", zlib.deflateSync(zlib.gzipSync(key))],
    ["compress, chunked", zlib.gzipSync(key)],
    ["gzip, chunked", zlib.gzipSync("harmless")],
  ] as const) {
    const got = await exchange(await apiTunnel(), chunked(te, body));
    assert.deepEqual(statuses(got), [501], `${te}: ${got.slice(0, 300)}`);
    assert.match(got, /request body has transfer-encoding [a-z-]+, which the firewall does not undo/, te);
  }
  const plain = await exchange(await dialProxy(), Buffer.concat([Buffer.from(`POST http://plain.example.test/te HTTP/1.1\r\nHost: plain.example.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${zlib.gzipSync("x").length.toString(16)}\r\n`), zlib.gzipSync("x"), Buffer.from("\r\n0\r\n\r\n")]));
  assert.deepEqual(statuses(plain), [501], "on the proxy port too");
  assert.equal(upstream.requests.length, before, "a transfer-coded body reached the upstream");
  const clean = await exchange(await apiTunnel(), chunked("chunked", Buffer.from("plain notes")));
  assert.deepEqual(statuses(clean), [200], clean);
  assert.equal(upstream.requests.at(-1)!.body, "plain notes");
});

test("secrets in the forms a server decodes on its own are blocked: JSON \\u and \\/ escapes, a random token in Basic auth", async () => {
  const c = await httpsVia(port, "api.example.test", bottleCa.certPem);
  const before = upstream.requests.length;
  const uEscaped = [...AWS_ID].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`).join("");
  const json = await c.request("POST", "/j", { ...H, "content-type": "application/json" }, `{"key":"${uEscaped}"}`);
  assert.equal(json.status, 403, json.body);
  assert.match(json.body, /detector aws matched in body \(AWS access key id \(JSON-decoded\)/);
  const random = "Xq7Lm2Pz9Rt4Vb8Nc1Kd6Fg3Hj5Wy0QsAeUoIrTy";
  const slashed = await c.request("POST", "/j", { ...H, "content-type": "application/json" }, `{"t":"${random.slice(0, 20)}\\/${random.slice(20)}"}`);
  assert.equal(slashed.status, 403, slashed.body);
  const basic = await c.request("GET", "/b", { ...H, authorization: `Basic ${Buffer.from(`x-access-token:${random}`).toString("base64")}` });
  assert.equal(basic.status, 403, basic.body);
  assert.match(basic.body, /detector high_entropy matched in header authorization/);
  assert.equal(upstream.requests.length, before);
  c.socket.destroy();
});

test("base64 wrapped across lines is read as its decoder reads it, joined: a key split by a line break never reaches the upstream; a wrapped image is not taken for random keys", async () => {
  const c = await httpsVia(port, "api.example.test", bottleCa.certPem);
  const before = upstream.requests.length;
  // `base64` wraps at 76 columns (57 bytes a line): from byte 50 on, the key straddles the first break.
  const file = Buffer.from(`${"#".repeat(29)}\naws_access_key_id = ${AWS_ID}\n`).toString("base64");
  const wrapped = file.replace(/.{76}/g, "$&\n");
  assert.ok(!wrapped.split("\n").some((line) => Buffer.from(line, "base64").toString("latin1").includes(AWS_ID.slice(0, 8))), "no one line carries the key");
  for (const [name, type, body] of [
    ["raw body", "text/plain", wrapped],
    ["JSON with \\n escapes", "application/json", JSON.stringify({ message: "add config", content: wrapped })],
  ]) {
    const res = await c.request("PUT", "/repos/o/r/contents/cfg", { ...H, "content-type": type! }, body);
    assert.equal(res.status, 403, `${name}: ${res.body}`);
    assert.match(res.body, /detector aws matched in body \(AWS access key id \(base64-encoded\)/, name);
  }
  assert.equal(upstream.requests.length, before, "a wrapped key reached the upstream");
  const clean = await c.request("PUT", "/repos/o/r/contents/readme", { ...H, "content-type": "text/plain" }, Buffer.from(`${"#".repeat(40)}\nplain notes\n`.repeat(4)).toString("base64").replace(/.{76}/g, "$&\n"));
  assert.equal(clean.status, 200, `wrapped base64 of ordinary text passes: ${clean.body}`);
  // An image as `base64` writes it: 76-column lines that look random one by one.
  let seed = 63;
  const image = Buffer.from(Array.from({ length: 1500 }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) >> 23)).toString("base64");
  for (const body of [image.replace(/.{76}/g, "$&\n"), JSON.stringify({ content: image.replace(/.{60}/g, "$&\n") })]) {
    const res = await c.request("PUT", "/repos/o/r/contents/logo.png", { ...H, "content-type": "application/json" }, body);
    assert.equal(res.status, 200, `a wrapped image passes: ${res.body}`);
  }
  c.socket.destroy();
});

test("wrapped base64 is joined however it is wrapped: base64url, breaks flattened to spaces or indented, a first row shorter than the rest; a key across a break never reaches the upstream", async () => {
  const c = await httpsVia(port, "api.example.test", bottleCa.certPem);
  const before = upstream.requests.length;
  // "?" (0x3f) puts "/" in the base64 ("_" in base64url); the key straddles a break in each form.
  const data = Buffer.from(`${"?".repeat(19)}\naws_access_key_id = ${AWS_ID}\n`);
  const wrap = (b64: string, width: number, br: string) => b64.replace(new RegExp(`.{${width}}`, "g"), `$&${br}`);
  const b64 = data.toString("base64");
  const forms: [string, string][] = [
    ["base64url, 76 columns", wrap(data.toString("base64url"), 76, "\n")],
    ["breaks flattened to spaces", `content=${wrap(b64, 76, " ")}`],
    ["indented YAML", `file: |\n  ${wrap(b64, 64, "\n  ")}\n`],
    ["a first row shorter than the rest", `content: ${b64.slice(0, 10)}\n${wrap(b64.slice(10), 76, "\n")}`],
  ];
  for (const [name, body] of forms) {
    assert.ok(!body.split(/\s/).some((row) => Buffer.from(row, "base64").toString("latin1").includes(AWS_ID)), `${name}: one row carries the key`);
    const res = await c.request("PUT", "/repos/o/r/contents/cfg", { ...H, "content-type": "text/plain" }, body);
    assert.equal(res.status, 403, `${name}: ${res.body}`);
    assert.match(res.body, /detector aws matched in body \(AWS access key id \(base64-encoded\)/, name);
  }
  assert.equal(upstream.requests.length, before, "a wrapped key reached the upstream");
  const notes = Buffer.from(`${"?".repeat(40)}\nplain notes\n`.repeat(4));
  for (const body of [wrap(notes.toString("base64url"), 76, "\n"), wrap(notes.toString("base64"), 76, " "), `content: ${notes.toString("base64").slice(0, 10)}\n${wrap(notes.toString("base64").slice(10), 76, "\n")}`]) {
    const res = await c.request("PUT", "/repos/o/r/contents/readme", { ...H, "content-type": "text/plain" }, body);
    assert.equal(res.status, 200, `wrapped base64 of ordinary text passes: ${res.body}`);
  }
  c.socket.destroy();
});

test("Cookie, If-None-Match and If-Match skip only the entropy check: a key id or a sensitive value in them is refused, a random session id passes", async () => {
  const value = "MyS3cretPassw0rdXyz";
  const p = await startFirewall({ policy: policyOf(["api.example.test"], { sensitive: [{ name: "DB_PASSWORD", slot: "BB_SENSITIVE_0" }] }), env: { BB_SENSITIVE_0: value } });
  const c = await httpsVia(p, "api.example.test", bottleCa.certPem);
  const before = upstream.requests.length;
  for (const [name, v, detector] of [
    ["cookie", `sid=abc; k=${AWS_ID}`, "aws"],
    ["cookie", `pw=${encodeURIComponent(value)}`, "sensitive_env"],
    ["if-none-match", `"${AWS_ID}"`, "aws"],
    ["if-match", `W/"${Buffer.from(value).toString("base64")}"`, "sensitive_env"],
  ] as const) {
    const res = await c.request("GET", "/c", { ...H, [name]: v });
    assert.equal(res.status, 403, `${name}: ${res.body}`);
    assert.match(res.body, new RegExp(`detector ${detector} matched in header ${name}`));
  }
  assert.equal(upstream.requests.length, before);
  const session = await c.request("GET", "/c", { ...H, cookie: "sid=Xq7Lm2Pz9Rt4Vb8Nc1Kd6Fg3Hj5Wy0QsAeUoIrTy", "if-none-match": '"Xq7Lm2Pz9Rt4Vb8Nc1Kd6Fg3Hj5Wy0QsAeUoIrTy"' });
  assert.equal(session.status, 200, session.body);
  c.socket.destroy();
});

test("a body is read as the server will read it: UTF-32 without a charset, a charset the firewall can decode, character references, a MIME part wrapped across lines; a charset it cannot decode is refused", async () => {
  const c = await httpsVia(port, "api.example.test", bottleCa.certPem);
  const before = upstream.requests.length;
  const utf32 = Buffer.concat([...`{"key":"${AWS_ID}"}`].map((ch) => Buffer.from([ch.charCodeAt(0), 0, 0, 0])));
  const wrapped = Buffer.from(`notes: ${AWS_ID}\n`).toString("base64").replace(/.{12}/g, "$&\r\n");
  const multipart = `--b\r\nContent-Disposition: form-data; name="f"; filename="n.txt"\r\nContent-Transfer-Encoding: base64\r\n\r\n${wrapped}\r\n--b--\r\n`;
  const cases: [string, string, string | Buffer, RegExp][] = [
    ["UTF-32 JSON, no charset", "application/json", utf32, /detector aws matched in body \(AWS access key id \(UTF-32\)/],
    ["UTF-7", "text/plain; charset=utf-7", `+AEEASwBJAEE-IOSFODNN7EXAMPLF`, /request body has charset "utf-7", which the firewall cannot read/],
    ["EBCDIC", "text/plain; charset=ibm037", "hello", /request body has charset "ibm037", which the firewall cannot read/],
    ["character references", "application/xml", `<k>${[...AWS_ID].map((ch) => `&#${ch.charCodeAt(0)};`).join("")}</k>`, /detector aws matched in body \(AWS access key id \(character references\)/],
    ["wrapped MIME part", "multipart/form-data; boundary=b", multipart, /detector aws matched in body \(AWS access key id \(base64-encoded\)/],
  ];
  for (const [name, type, body, reason] of cases) {
    const res = await c.request("POST", "/c", { ...H, "content-type": type }, body);
    assert.equal(res.status, 403, `${name}: ${res.body}`);
    assert.match(res.body, reason, name);
  }
  assert.equal(upstream.requests.length, before, "a refused body reached the upstream");
  const sjis = await c.request("POST", "/c", { ...H, "content-type": "text/plain; charset=shift_jis" }, Buffer.from([0x82, 0xa0, 0x20, 0x68, 0x69]));
  assert.equal(sjis.status, 200, `a charset the firewall decodes passes when clean: ${sjis.body}`);
  const basic = await c.request("GET", "/b", { ...H, authorization: `Basic ${Buffer.from(`x:${AWS_ID}`).toString("base64").replace(/.{8}/g, "$& ")}` });
  assert.equal(basic.status, 403, basic.body);
  assert.match(basic.body, /detector aws matched in header authorization/);
  c.socket.destroy();
});

test("a sensitive value in a host name or a header name is refused in any case, though names arrive lower-cased", async () => {
  const value = "MyS3cretPassw0rdXyz";
  const p = await startFirewall({ policy: policyOf(["*.wild.test"], { sensitive: [{ name: "DB_PASSWORD", slot: "BB_SENSITIVE_0" }] }), env: { BB_SENSITIVE_0: value } });
  const t = await connectTunnel(p, `${value}.wild.test:443`);
  assert.ok("refused" in t, "CONNECT with the value as a label was let through");
  assert.match(t.refused.body, /blocked request to \(redacted host name\): detector sensitive_env matched in host name \(value of sensitive env DB_PASSWORD \(case changed\)/);
  const c = await plainVia(p);
  const res = await c.request("GET", "http://x.wild.test/", { host: "x.wild.test", [`X-${value}`]: "1" });
  assert.equal(res.status, 403);
  assert.match(res.body, /detector sensitive_env matched in a header name/);
  c.socket.destroy();
});

test("a WebSocket upgrade that declares a body is refused: the bytes after its head would be frames here and a body to a server that honoured the length", async () => {
  const before = upstream.requests.length;
  for (const framing of ["Content-Length: 11", "Transfer-Encoding: chunked"]) {
    const raw = await exchange(await apiTunnel(), `GET /chat HTTP/1.1\r\nHost: api.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${framing}\r\n\r\nhello world`);
    assert.deepEqual(statuses(raw), [400], `${framing}: ${raw}`);
    assert.match(raw, /an upgrade request cannot carry a body/);
  }
  assert.equal(upstream.requests.length, before);
});

test("inside a tunnel a request head or body trickled a byte at a time is cut off at its deadline; a prompt keep-alive request is not", async () => {
  // Node enforces these limits only on servers that listen, which the tunnels' inner one never does.
  const p = await startFirewall({ timeouts: { idleMs: 65_000, headersMs: 600, requestMs: 900 } });
  /**
   * Write `first`, then one more byte every 100 ms; the ms until the firewall closes the
   * tunnel, counted from before it was dialled (a head's deadline starts with the TLS
   * session, before this side has it) and from when it was ready (a body's starts at its
   * head, written after that). Infinity: still open after 20 s. A deadline that works cuts
   * it soon after 600 or 900 ms, one that each byte put off never does; how late past its
   * deadline the cut comes is the machine's load, not the property.
   */
  const trickle = async (first: string): Promise<{ sinceDial: number; sinceReady: number }> => {
    const dialled = Date.now();
    const socket = await apiTunnel(p);
    const ready = Date.now();
    socket.on("error", () => {});
    socket.write(first);
    const timer = setInterval(() => socket.write("a"), 100);
    const closed = await Promise.race([new Promise((r) => socket.once("close", () => r(true))), new Promise((r) => setTimeout(() => r(false), 20_000))]);
    clearInterval(timer);
    socket.destroy();
    return closed ? { sinceDial: Date.now() - dialled, sinceReady: Date.now() - ready } : { sinceDial: Infinity, sinceReady: Infinity };
  };
  const head = (await trickle("GET /slow-head HTTP/1.1\r\nhost: api.example.test\r\nx-trickle: ")).sinceDial;
  assert.ok(head >= 500 && head !== Infinity, `head cut off after ${head} ms`);
  const body = (await trickle("POST /slow-body HTTP/1.1\r\nhost: api.example.test\r\ncontent-length: 1000\r\n\r\n")).sinceReady;
  assert.ok(body >= 800 && body !== Infinity, `body cut off after ${body} ms`);
  assert.ok(!everything().some((r) => r.url.startsWith("/slow-")), "neither trickled request reached the upstream");

  // Two requests on one tunnel, the second 400 ms after the first answer: each within its
  // deadline, by a margin no machine's load takes up (under 600 ms, 400 ms of sleep can be
  // over 600 ms by the time the firewall reads the request).
  const roomy = await startFirewall({ timeouts: { idleMs: 65_000, headersMs: 5_000, requestMs: 5_000 } });
  const socket = await apiTunnel(roomy);
  const first = await exchangeKeep(socket, "GET /prompt-1 HTTP/1.1\r\nhost: api.example.test\r\n\r\n");
  await new Promise((r) => setTimeout(r, 400));
  const second = await exchange(socket, "GET /prompt-2 HTTP/1.1\r\nhost: api.example.test\r\n\r\n");
  assert.deepEqual([statuses(first), statuses(second)], [[200], [200]]);

  // An answer streaming for longer than both deadlines arrives whole, also behind a
  // pipelined request whose answer ends first.
  const pipelined = await exchange(
    await apiTunnel(p),
    "GET /prompt-3 HTTP/1.1\r\nhost: api.example.test\r\n\r\nGET /slow-answer-1500 HTTP/1.1\r\nhost: api.example.test\r\n\r\n",
    2000,
  );
  assert.deepEqual(statuses(pipelined), [200, 200]);
  assert.ok(pipelined.endsWith("\r\n\r\n1234567890"), pipelined.slice(-80));
  const afterBody = await exchange(await apiTunnel(p), "POST /slow-answer-1500 HTTP/1.1\r\nhost: api.example.test\r\ncontent-length: 2\r\n\r\nhi", 2000);
  assert.ok(afterBody.endsWith("\r\n\r\n1234567890"), afterBody.slice(-80));
});

/** Like exchange(), but leaves the socket open for the next request. */
async function exchangeKeep(socket: net.Socket, bytes: string): Promise<string> {
  let got = "";
  const onData = (c: Buffer) => void (got += c.toString("latin1"));
  socket.on("data", onData);
  socket.write(bytes);
  for (let i = 0; i < 60 && !/\r\n\r\n[\s\S]*\}/.test(got); i++) await new Promise((r) => setTimeout(r, 50));
  socket.off("data", onData);
  return got;
}
