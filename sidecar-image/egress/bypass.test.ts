// Attacks on credential injection by an agent that controls every byte it sends: the
// whole chain (firewall -> egress -> a fake HTTPS upstream with its own test CA), all on
// 127.0.0.1, and egress spoken to directly to pin what it does with requests the firewall
// never sends. Every name resolves to the one upstream, which records each request's raw
// header list, so a credential sent to the wrong host or a leftover agent header shows.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import https from "node:https";
import { test } from "node:test";
import { createScanner } from "../../lib/dlp/scanner.ts";
import { mintCa, mintLeaf } from "../../lib/tls/mod.ts";
import { connectTunnel, httpsVia, plainVia, RawHttp, tlsOver } from "../../tests/support/raw-http.ts";
import { startChain } from "./testdata/chain.ts";

interface Seen {
  method: string;
  url: string;
  headers: [string, string][];
}

// EGRESS_TOKEN_2 has the shape of a real Anthropic key (sk-ant-api03-, 93 base62
// characters, AA), which the firewall's DLP blocks wherever it scans.
const BASE62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const ANTHROPIC_KEY = `sk-ant-api03-${[...randomBytes(93)].map((b) => BASE62[b % 62]).join("")}AA`;
const REAL = { EGRESS_TOKEN_0: "real-bearer-token-0", EGRESS_TOKEN_1: "real-header-token-1", EGRESS_TOKEN_2: ANTHROPIC_KEY };
const AWS_ID = "AKIAIOSFODNN7EXAMPLF";
const NAMES = ["api.example.test", "hdr.example.test", "ant.example.test", "open.example.test", "evil.test"];

const bottleCa = await mintCa({ commonName: "test bottle CA" });
const upstreamCa = await mintCa({ commonName: "test upstream CA" });
const leaf = await mintLeaf({ caCertPem: upstreamCa.certPem, caKeyPem: upstreamCa.keyPem, hosts: NAMES });

const seen: Seen[] = [];
const upstream = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
  const headers: [string, string][] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i]!.toLowerCase(), req.rawHeaders[i + 1]!]);
  seen.push({ method: req.method!, url: req.url!, headers });
  req.resume();
  req.on("end", () => res.end("ok"));
});
const { egressPort, fwPort, sentByFirewall } = await startChain({
  upstream,
  upstreamCa,
  bottleCa,
  names: NAMES,
  env: REAL,
  routes: [
    { host: "api.example.test", auth: "bearer", header: null, slot: "EGRESS_TOKEN_0" },
    { host: "hdr.example.test", auth: "header", header: "X-Private-Token", slot: "EGRESS_TOKEN_1" },
    { host: "ant.example.test", auth: "x-api-key", header: null, slot: "EGRESS_TOKEN_2" },
  ],
  hosts: [
    { host: "api.example.test", tlsPassthrough: false, routed: true, replacedHeaders: ["authorization", "x-api-key"] },
    { host: "hdr.example.test", tlsPassthrough: false, routed: true, replacedHeaders: ["authorization", "x-api-key", "x-private-token"] },
    { host: "ant.example.test", tlsPassthrough: false, routed: true, replacedHeaders: ["authorization", "x-api-key"] },
    { host: "open.example.test", tlsPassthrough: false, routed: false },
  ],
});

const values = (s: Seen, name: string) => s.headers.filter(([k]) => k === name).map(([, v]) => v);
const allValues = (s: Seen) => s.headers.map(([, v]) => v).join("\n");

/** One raw request written straight to egress (only the firewall can do this in a bottle). */
async function toEgress(head: string): Promise<{ status: number; body: string }> {
  const c = await plainVia(egressPort);
  try {
    c.socket.write(head);
    return await c.readResponse();
  } finally {
    c.socket.destroy();
  }
}

test("on a routed host, what the agent puts in the headers the firewall leaves unscanned never leaves: any case, repeated, only the real token arrives", async () => {
  const api = await httpsVia(fwPort, "api.example.test", bottleCa.certPem);
  const viaFirewall = await api.request("GET", "/v1", { host: "api.example.test", AUTHORIZATION: `Bearer ${AWS_ID}`, "X-Api-Key": AWS_ID });
  assert.equal(viaFirewall.status, 200, viaFirewall.body);
  api.socket.destroy();
  const hdr = await httpsVia(fwPort, "hdr.example.test", bottleCa.certPem);
  assert.equal((await hdr.request("GET", "/v4", { host: "hdr.example.test", "x-PRIVATE-token": AWS_ID, authorization: AWS_ID })).status, 200);
  hdr.socket.destroy();
  const direct = await toEgress(
    `GET https://api.example.test/v1 HTTP/1.1\r\nHost: api.example.test\r\nAuthorization: Bearer ${AWS_ID}\r\nauthorization: x ${AWS_ID}\r\n` +
      `X-API-KEY: ${AWS_ID}\r\nx-api-key: ${AWS_ID}\r\nConnection: close\r\n\r\n`,
  );
  assert.equal(direct.status, 200, direct.body);

  const [a, h, d] = seen.slice(-3) as [Seen, Seen, Seen];
  for (const s of [a, d]) {
    assert.deepEqual(values(s, "authorization"), [`Bearer ${REAL.EGRESS_TOKEN_0}`]);
    assert.deepEqual(values(s, "x-api-key"), []);
  }
  assert.deepEqual(values(h, "x-private-token"), [REAL.EGRESS_TOKEN_1]);
  assert.deepEqual(values(h, "authorization"), []);
  assert.ok(!seen.some((s) => allValues(s).includes(AWS_ID)), "an agent credential header reached the upstream");
});

test("a routed host's real credential never trips the firewall's DLP: the firewall only ever handles the placeholder, egress puts the key in, and the upstream gets exactly it", async () => {
  assert.equal(createScanner().scan(ANTHROPIC_KEY)?.detector, "anthropic", "the real key is not one the DLP blocks");
  const before = seen.length;
  const ant = await httpsVia(fwPort, "ant.example.test", bottleCa.certPem);
  const res = await ant.request("POST", "/v1/messages", { host: "ant.example.test", "x-api-key": "bb-placeholder-egress-token-2", "content-type": "application/json" }, '{"max_tokens":1}');
  ant.socket.destroy();
  assert.equal(res.status, 200, res.body);
  const [s] = seen.slice(before) as [Seen];
  assert.deepEqual(values(s, "x-api-key"), [ANTHROPIC_KEY]);
  // On a routed host the firewall does not scan the value of a header egress replaces, so
  // it would pass the key in x-api-key even with egress in front of it: a 200 alone cannot
  // tell the order. What left the firewall holds the placeholder and never the key.
  const sent = sentByFirewall();
  assert.match(sent, /x-api-key: bb-placeholder-egress-token-2\r\n/i);
  assert.ok(!sent.includes(ANTHROPIC_KEY), "the firewall handled the real key: egress is not behind it");
});

test("egress takes the target from the absolute URL alone: a Host header naming a routed host neither gets a credential nor moves one", async () => {
  const before = seen.length;
  assert.equal((await toEgress("GET https://open.example.test/x HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n")).status, 200);
  assert.equal((await toEgress("GET https://api.example.test/y HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n")).status, 200);
  const [open, api] = seen.slice(before) as [Seen, Seen];
  assert.deepEqual(values(open, "host"), ["open.example.test"]);
  assert.deepEqual(values(open, "authorization"), []);
  assert.deepEqual(values(api, "host"), ["api.example.test"]);
  assert.deepEqual(values(api, "authorization"), [`Bearer ${REAL.EGRESS_TOKEN_0}`]);
});

test("egress refuses what the firewall never sends (origin-form, another scheme), so nothing gets a credential that way", async () => {
  const before = seen.length;
  for (const line of ["GET /v1 HTTP/1.1", "GET ftp://api.example.test/v1 HTTP/1.1", "GET api.example.test/v1 HTTP/1.1"]) {
    const res = await toEgress(`${line}\r\nHost: api.example.test\r\nConnection: close\r\n\r\n`);
    assert.equal(res.status, 400, `${line}: ${res.body}`);
  }
  assert.equal(seen.length, before);
});

test("TRACE or TRACK to a routed host is refused before it leaves (the upstream would echo the real credential); unrouted hosts may trace", async () => {
  const before = seen.length;
  for (const method of ["TRACE", "TRACK"]) {
    const res = await toEgress(`${method} https://api.example.test/ HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n`);
    if (method === "TRACK" && res.status === 400) continue; // node's parser knows no TRACK; deno's does
    assert.equal(res.status, 405, `${method}: ${res.body}`);
    assert.match(res.body, /would echo the injected credential/);
    assert.ok(!res.body.includes(REAL.EGRESS_TOKEN_0));
  }
  const api = await httpsVia(fwPort, "api.example.test", bottleCa.certPem);
  assert.equal((await api.request("TRACE", "/", { host: "api.example.test" })).status, 405, "through the firewall too");
  api.socket.destroy();
  assert.equal(seen.length, before);
  assert.equal((await toEgress("TRACE https://open.example.test/ HTTP/1.1\r\nHost: open.example.test\r\nConnection: close\r\n\r\n")).status, 200);
});

test("the path cannot move the next hop: //host, backslash, @ and encoded dot segments stay on the tunnel's host and its credential stays there", async () => {
  const before = seen.length;
  const api = await httpsVia(fwPort, "api.example.test", bottleCa.certPem);
  for (const path of ["//evil.test/x", "/\\evil.test/x", "/@evil.test/x", "/..%2f..%2f@evil.test/", "/%2e%2e/%2e%2e/evil.test", "/x?@evil.test/"]) {
    const res = await api.request("GET", path, { host: "evil.test" });
    assert.ok(res.status === 200 || res.status === 400, `${path}: ${res.status} ${res.body}`);
    if (api.closed) break;
  }
  api.socket.destroy();
  const after = seen.slice(before);
  assert.ok(after.length > 0);
  for (const s of after) assert.deepEqual(values(s, "host"), ["api.example.test"], s.url);
});

test("a routed host never gets its credential over plain HTTP: http:// absolute-form, or plain HTTP inside CONNECT :443", async () => {
  const before = seen.length;
  const c = await plainVia(fwPort);
  const abs = await c.request("GET", "http://api.example.test/v1", { host: "api.example.test" });
  assert.equal(abs.status, 502);
  assert.match(abs.body, /refusing to send the credential for api\.example\.test over plain http/);
  c.socket.destroy();
  const t = await connectTunnel(fwPort, "api.example.test:443");
  assert.ok("socket" in t);
  const inTunnel = await new RawHttp(t.socket).request("GET", "/v1", { host: "api.example.test" });
  assert.equal(inTunnel.status, 502);
  t.socket.destroy();
  assert.equal(seen.length, before);
  // A TLS session in the same kind of tunnel is what works.
  const tt = await connectTunnel(fwPort, "api.example.test:443");
  assert.ok("socket" in tt);
  const secure = new RawHttp(await tlsOver(tt.socket, "api.example.test", bottleCa.certPem));
  assert.equal((await secure.request("GET", "/v1", { host: "api.example.test" })).status, 200);
  secure.socket.destroy();
  assert.equal(Buffer.byteLength(values(seen.at(-1)!, "authorization")[0] ?? ""), `Bearer ${REAL.EGRESS_TOKEN_0}`.length);
});
