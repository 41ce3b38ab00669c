// In-process tests of createFirewall(): real sockets and real TLS on loopback, a fake
// HTTPS upstream with its own test CA, and a client that trusts only the bottle CA.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { test } from "node:test";
import zlib from "node:zlib";
import { createLogger } from "../../lib/log.ts";
import type { Detector, FirewallPolicy } from "../../lib/sidecar-config.ts";
import { mintCa, mintLeaf } from "../../lib/tls/mod.ts";
import { connectTunnel, httpsVia, plainVia, RawHttp, tlsOver } from "../../tests/support/raw-http.ts";
import { until } from "../../tests/support/until.ts";
import { wsFrame } from "../../tests/support/ws-frame.mjs";
import { OFF_THREAD_BYTES } from "./off-thread.ts";
import { createFirewall } from "./firewall.ts";
import { firewallPool, policyOf, startUpstream } from "./test-harness.ts";

const corpus = (name: string) => JSON.parse(readFileSync(new URL(`../../lib/dlp/testdata/${name}`, import.meta.url), "utf8"));
const positives: { detector: Detector; sample: string }[] = corpus("positive.json").map((p: { detector: Detector; sample: string }) => ({
  ...p,
  sample: p.sample.replaceAll("·", ""),
}));
const negatives: { name: string; text: string }[] = corpus("negative.json");

const bottleCa = await mintCa({ commonName: "test bottle CA" });
const upstreamCa = await mintCa({ commonName: "test upstream CA" });
const HOSTS = ["api.example.test", "a.wild.test", "deep.b.wild.test", "wild.test", "pass.example.test", "ws.example.test", "evil.test"];
const leaf = await mintLeaf({ caCertPem: upstreamCa.certPem, caKeyPem: upstreamCa.keyPem, hosts: HOSTS });
const upstream = await startUpstream({ tls: leaf });
const plainUpstream = await startUpstream();
const resolve = new Map(HOSTS.map((h) => [h, { host: "127.0.0.1", port: upstream.port }]));
resolve.set("plain.example.test", { host: "127.0.0.1", port: plainUpstream.port });
resolve.set("down.example.test", { host: "127.0.0.1", port: 1 });
resolve.set("plainpass.example.test", { host: "127.0.0.1", port: plainUpstream.port });
// What a non-HTTP protocol's server would see: every byte, echoed back.
const echo = net.createServer((s) => s.pipe(s));
await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
echo.unref();
resolve.set("ssh.example.test", { host: "127.0.0.1", port: (echo.address() as net.AddressInfo).port });

const POLICY = policyOf([
  { host: "api.example.test", tlsPassthrough: false, ports: [443, 8443] },
  "*.wild.test",
  { host: "pass.example.test", tlsPassthrough: true },
  { host: "plainpass.example.test", tlsPassthrough: true },
  { host: "ssh.example.test", tlsPassthrough: true, ports: [22] },
  "ws.example.test",
  "plain.example.test",
  "down.example.test",
]);

const logs: string[] = [];
const startFirewall = firewallPool({
  policy: POLICY,
  ca: bottleCa,
  upstreamCa: [upstreamCa.certPem],
  resolve,
  log: createLogger({ level: "info", write: (t) => void logs.push(t) }),
}, [upstream, plainUpstream]);
const port = await startFirewall();

const api = () => httpsVia(port, "api.example.test", bottleCa.certPem);
const H = { host: "api.example.test" };

test("an allowed host passes through intercepted TLS and its POST body arrives upstream intact", async () => {
  const c = await api();
  const body = JSON.stringify({ model: "m", messages: [{ role: "user", content: "héllo wörld" }] });
  const res = await c.request("POST", "/v1/messages?beta=true", { ...H, "content-type": "application/json" }, body);
  assert.equal(res.status, 200);
  assert.deepEqual(JSON.parse(res.body), { ok: true, path: "/v1/messages?beta=true" });
  const got = upstream.requests.at(-1)!;
  assert.equal(got.method, "POST");
  assert.equal(Buffer.from(got.body, "latin1").toString("utf8"), body);
  assert.equal(got.headers.host, "api.example.test");
  c.socket.destroy();
});

test("several requests share one intercepted connection (keep-alive) and one upstream connection", async () => {
  const c = await api();
  await c.request("GET", "/warm", H);
  const before = upstream.connections();
  for (let i = 0; i < 5; i++) {
    const res = await c.request("GET", `/item/${i}`, H);
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).path, `/item/${i}`);
  }
  assert.equal(upstream.connections(), before, "the firewall reused its upstream connection");
  assert.equal(c.socket.destroyed, false);
  c.socket.destroy();
});

test("a host outside the allowlist gets 403 naming the host and the rule, for CONNECT and plain HTTP", async () => {
  const t = await connectTunnel(port, "evil.test:443");
  assert.ok("refused" in t);
  assert.equal(t.refused.status, 403);
  assert.equal(t.refused.body, "bot-bottle firewall: blocked request to evil.test: host is not in this bottle's allowlist\n");
  const c = await plainVia(port);
  const res = await c.request("GET", "http://evil.test/x", { host: "evil.test" });
  assert.equal(res.status, 403);
  assert.match(res.body, /blocked request to evil\.test: host is not in this bottle's allowlist/);
  assert.ok(logs.some((l) => /blocked CONNECT evil\.test: host is not in this bottle's allowlist/.test(l)));
  c.socket.destroy();
});

test("a *.suffix rule allows any subdomain at any depth but not the bare domain", async () => {
  for (const host of ["a.wild.test", "deep.b.wild.test"]) {
    const c = await httpsVia(port, host, bottleCa.certPem);
    assert.equal((await c.request("GET", "/", { host })).status, 200, host);
    c.socket.destroy();
  }
  const t = await connectTunnel(port, "wild.test:443");
  assert.ok("refused" in t && t.refused.status === 403);
});

test("a name no DNS name can be is no target, though a *.suffix rule would allow it: no wildcard or outsized leaf is minted for it", async () => {
  const long = `${Array.from({ length: 5 }, () => "a".repeat(60)).join(".")}.wild.test`; // 315 characters
  for (const host of ["*.wild.test", "a*b.wild.test", ".wild.test", "x..wild.test", `${"a".repeat(64)}.wild.test`, long]) {
    const t = await connectTunnel(port, `${host}:443`);
    assert.ok("refused" in t, `CONNECT ${host.slice(0, 40)} was let through`);
    assert.equal(t.refused.status, 400, host);
    assert.match(t.refused.body, /cannot parse CONNECT target/);
  }
  const c = await plainVia(port);
  assert.equal((await c.request("GET", "http://*.wild.test/", { host: "*.wild.test" })).status, 400);
  c.socket.destroy();
  // The longest name DNS carries still passes.
  const longest = `${Array.from({ length: 3 }, () => "b".repeat(63)).join(".")}.${"c".repeat(51)}.wild.test`;
  assert.equal(longest.length, 253);
  const ok = await httpsVia(port, longest, bottleCa.certPem);
  ok.socket.destroy();
});

test("every positive DLP sample is blocked in the URL, a header and the body, naming detector and place", async () => {
  const c = await api();
  const seen = upstream.requests.length;
  for (const { detector, sample } of positives) {
    const oneLine = sample.replaceAll("\n", "\\n");
    const cases: [string, () => Promise<{ status: number; body: string }>][] = [
      ["url", () => c.request("GET", `/search?q=${encodeURIComponent(sample)}`, H)],
      ["header x-data", () => c.request("GET", "/", { ...H, "x-data": oneLine })],
      ["body", () => c.request("POST", "/upload", { ...H, "content-type": "text/plain" }, sample)],
    ];
    for (const [where, send] of cases) {
      const res = await send();
      assert.equal(res.status, 403, `${detector} in ${where}: ${res.body}`);
      assert.match(res.body, new RegExp(`^bot-bottle firewall: blocked request to api\\.example\\.test: detector ${detector} matched in ${where} `), res.body);
    }
    // Neither the response nor the log carries the secret: no 12-char run of it survives.
    const core = sample.match(/[A-Za-z0-9+/_-]{12,}/g)!.sort((a, b) => b.length - a.length)[0]!;
    assert.ok(!logs.some((l) => l.includes(core)), `log shows ${detector} secret`);
  }
  assert.equal(upstream.requests.length, seen, "nothing blocked reached the upstream");
  c.socket.destroy();
});

test("a secret sent as a header name is blocked, upper-case formats included (names arrive lower-cased)", async () => {
  const c = await api();
  const seen = upstream.requests.length;
  for (const [name, detector] of [["AKIAZ7QK3MPLW2XVR4TN", "aws"], ["ghp_0123456789abcdefghijABCDEFGHIJ012345", "github"]] as const) {
    const res = await c.request("GET", "/", { ...H, [name]: "1" });
    assert.equal(res.status, 403, `${name}: ${res.body}`);
    assert.match(res.body, new RegExp(`detector ${detector} matched in a header name`));
  }
  assert.equal(upstream.requests.length, seen, "nothing blocked reached the upstream");
  assert.equal((await c.request("GET", "/", { ...H, "x-request-id": "1" })).status, 200);
  c.socket.destroy();
});

test("an upstream status the firewall cannot relay is a 502 for that request only", async () => {
  const c = await api();
  const res = await c.request("GET", "/status-099", H);
  assert.equal(res.status, 502);
  assert.match(res.body, /api\.example\.test sent an answer the firewall cannot relay: status 99 is not a valid HTTP status/);
  c.socket.destroy();
  const again = await api();
  assert.equal((await again.request("GET", "/after", H)).status, 200, "the firewall is still up");
  again.socket.destroy();
});

test("a request blocked on its headers has its body drained and the connection stays usable", async () => {
  const c = await api();
  const jwt = positives.find((p) => p.detector === "jwt")!.sample;
  const res = await c.request("POST", "/", { ...H, authorization: `Bearer ${jwt}` }, "x".repeat(100_000));
  assert.equal(res.status, 403);
  assert.match(res.body, /detector jwt matched in header authorization/);
  assert.equal((await c.request("GET", "/after", H)).status, 200);
  c.socket.destroy();
});

test("a secret carried in a host name under a *.suffix rule is refused at CONNECT and kept out of the log", async () => {
  const npm = positives.find((p) => p.detector === "npm")!.sample.toLowerCase();
  const t = await connectTunnel(port, `${npm}.wild.test:443`);
  assert.ok("refused" in t);
  assert.equal(t.refused.status, 403);
  assert.match(t.refused.body, /^bot-bottle firewall: blocked request to \(redacted host name\): detector npm matched in host name/);
  assert.ok(!t.refused.body.includes(npm) && !logs.some((l) => l.includes(npm)));
});

test("ordinary traffic passes: every negative sample in the body, the URL and a header reaches the upstream", async () => {
  const c = await api();
  for (const { name, text } of negatives) {
    const body = await c.request("POST", "/ok", H, text);
    assert.equal(body.status, 200, `${name} in body: ${body.body}`);
    assert.equal(upstream.requests.at(-1)!.body, Buffer.from(text).toString("latin1"));
    const url = await c.request("GET", `/ok?q=${encodeURIComponent(text.slice(0, 4000))}`, H);
    assert.equal(url.status, 200, `${name} in url: ${url.body}`);
    const header = await c.request("GET", "/ok", { ...H, "x-data": text.slice(0, 4000).replace(/[\r\n]+/g, " ") });
    assert.equal(header.status, 200, `${name} in header: ${header.body}`);
  }
  c.socket.destroy();
});

test("a disabled detector lets its sample through", async () => {
  const p = await startFirewall({ policy: { ...POLICY, dlp: { disabled: ["github", "jwt"], sensitive: [] } } });
  const c = await httpsVia(p, "api.example.test", bottleCa.certPem);
  for (const { sample } of positives.filter((s) => s.detector === "github" || s.detector === "jwt")) {
    const res = await c.request("GET", "/", { ...H, authorization: `Bearer ${sample}` });
    assert.equal(res.status, 200, res.body);
    assert.equal(upstream.requests.at(-1)!.headers.authorization, `Bearer ${sample}`);
  }
  const aws = await c.request("GET", "/", { ...H, "x-key": "AKIAIOSFODNN7EXAMPLE" });
  assert.equal(aws.status, 403, "other detectors stay on");
  c.socket.destroy();
});

test("a sensitive env value is blocked as is and base64-encoded, and the log never shows it", async () => {
  const value = "hunter2-correct-horse-battery";
  const policy: FirewallPolicy = { ...POLICY, dlp: { disabled: [], sensitive: [{ name: "DB_PASSWORD", slot: "BB_SENSITIVE_0" }] } };
  const p = await startFirewall({ policy, env: { BB_SENSITIVE_0: value } });
  const c = await httpsVia(p, "api.example.test", bottleCa.certPem);
  for (const body of [`password=${value}`, JSON.stringify({ blob: Buffer.from(`pw:${value}`).toString("base64") })]) {
    const res = await c.request("POST", "/", H, body);
    assert.equal(res.status, 403);
    assert.match(res.body, /detector sensitive_env matched in body \(value of sensitive env DB_PASSWORD/);
    assert.ok(!res.body.includes(value));
  }
  assert.ok(!logs.some((l) => l.includes(value)));
  c.socket.destroy();
});

test("a passthrough host is gated by name but never decrypted: the client sees the upstream's own certificate", async () => {
  const t = await connectTunnel(port, "pass.example.test:443");
  assert.ok("socket" in t);
  const c = new RawHttp(await tlsOver(t.socket, "pass.example.test", upstreamCa.certPem));
  const github = positives.find((p) => p.detector === "github")!.sample;
  const res = await c.request("GET", "/raw", { host: "pass.example.test", authorization: `token ${github}` });
  assert.equal(res.status, 200, "not scanned, because not decrypted");
  assert.equal(upstream.requests.at(-1)!.headers.authorization, `token ${github}`);
  c.socket.destroy();

  const again = await connectTunnel(port, "pass.example.test:443");
  assert.ok("socket" in again);
  await assert.rejects(tlsOver(again.socket, "pass.example.test", bottleCa.certPem), /certificate|self.signed|issuer/i);
  again.socket.destroy();
});

test("a passthrough tunnel whose TLS names another server than the CONNECT did is closed", async () => {
  const seen = upstream.requests.length;
  for (const [servername, why] of [["other.example.test", "its TLS names another server"], ["", "its TLS names no server"]] as const) {
    // A firewall each: the log has one line per host and rule, and the second would be a repeat.
    const t = await connectTunnel(await startFirewall(), "pass.example.test:443");
    assert.ok("socket" in t);
    await assert.rejects(tlsOver(t.socket, servername, upstreamCa.certPem));
    t.socket.destroy();
    assert.ok(logs.some((l) => l.includes(`blocked passthrough tunnel to pass.example.test: ${why}`)), logs.join("\n"));
  }
  assert.equal(upstream.requests.length, seen, "nothing reached the upstream");
});

test("plain HTTP in a passthrough tunnel is served like an intercepted tunnel's: its Host cannot pick another site, and it is scanned", async () => {
  const t = await connectTunnel(port, "plainpass.example.test:80");
  assert.ok("socket" in t);
  const c = new RawHttp(t.socket);
  // Before, the tunnel was piped as it was: a shared front end served "evil.test" to it.
  assert.equal((await c.request("GET", "/fronted", { host: "evil.test" })).status, 200);
  assert.equal(plainUpstream.requests.at(-1)!.url, "/fronted");
  assert.equal(plainUpstream.requests.at(-1)!.headers.host, "plainpass.example.test");
  const seen = plainUpstream.requests.length;
  const bad = await c.request("GET", "/", { host: "plainpass.example.test", "x-key": positives.find((p) => p.detector === "npm")!.sample });
  assert.equal(bad.status, 403);
  assert.match(bad.body, /detector npm matched in header x-key/);
  assert.equal(plainUpstream.requests.length, seen);
  c.socket.destroy();

  // Blank lines and a tab before the target, which lenient servers take, change nothing.
  const u = await connectTunnel(port, "plainpass.example.test:443");
  assert.ok("socket" in u);
  u.socket.write("\r\n\r\nGET\t/lenient HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n");
  const answer = await new Promise<string>((r) => {
    let text = "";
    u.socket.on("data", (d: Buffer) => (text += d.toString("latin1")));
    u.socket.on("close", () => r(text));
  });
  assert.doesNotMatch(answer, /^HTTP\/1\.1 200/, "a request the firewall could not parse went through unscanned");
  assert.ok(!plainUpstream.requests.some((r) => r.url === "/lenient" && r.headers.host === "evil.test"));
});

test("other plain protocols in a passthrough tunnel pass as they are (ssh)", async () => {
  const t = await connectTunnel(port, "ssh.example.test:22");
  assert.ok("socket" in t);
  const banner = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";
  t.socket.write(banner);
  const echoed = await new Promise<string>((r) => t.socket.once("data", (d: Buffer) => r(d.toString("latin1"))));
  assert.equal(echoed, banner);
  t.socket.destroy();
});

/** Whether `socket` closes within `ms`. */
const closesWithin = (socket: net.Socket, ms: number) =>
  new Promise<boolean>((r) => {
    if (socket.destroyed) return r(true);
    const timer = setTimeout(() => r(false), ms);
    socket.once("close", () => (clearTimeout(timer), r(true)));
  });

test("a reload closes the WebSockets and passthrough tunnels it no longer allows (gated once, when they opened); those it still allows stay open", async (t) => {
  const lines: string[] = [];
  const fw = createFirewall({ policy: POLICY, ca: bottleCa, upstreamCa: [upstreamCa.certPem], resolve, log: createLogger({ level: "info", write: (l) => void lines.push(l) }) });
  t.after(() => fw.close());
  const via = (await fw.listen(0, "127.0.0.1")).port;
  const ws = await wsSession({}, via);
  const pass = await connectTunnel(via, "pass.example.test:443");
  assert.ok("socket" in pass);
  const passTls = new RawHttp(await tlsOver(pass.socket, "pass.example.test", upstreamCa.certPem));
  assert.equal((await passTls.request("GET", "/before", { host: "pass.example.test" })).status, 200);
  const ssh = await connectTunnel(via, "ssh.example.test:22");
  assert.ok("socket" in ssh);
  const echo = (text: string) => {
    ssh.socket.write(text);
    return new Promise<string>((r) => ssh.socket.once("data", (d: Buffer) => r(d.toString("latin1"))));
  };
  assert.equal(await echo("SSH-2.0-OpenSSH_9.2p1\r\n"), "SSH-2.0-OpenSSH_9.2p1\r\n");

  // ws.example.test goes (a denied approval rolled back); pass.example.test is to be
  // decrypted from now on, which an open passthrough tunnel never will be.
  fw.setPolicy({
    ...POLICY,
    hosts: POLICY.hosts.filter((h) => h.host !== "ws.example.test").map((h) => (h.host === "pass.example.test" ? { ...h, tlsPassthrough: false } : h)),
  });
  assert.ok(await closesWithin(ws.c.socket, 2000), "the WebSocket to a host the policy dropped is still open");
  assert.ok(await closesWithin(passTls.socket, 2000), "the passthrough tunnel to a host now intercepted is still open");
  assert.deepEqual(lines.filter((l) => l.includes("no longer allows")), [
    "warning: closed websocket to ws.example.test: the reloaded policy no longer allows it\n",
    "warning: closed passthrough tunnel to pass.example.test: the reloaded policy no longer allows it\n",
  ]);
  assert.equal(await echo("still here\r\n"), "still here\r\n", "a tunnel the policy still allows was cut");
  ssh.socket.destroy();
});

test("with an agent key, a proxy request without it (or with another) is a 407 that names no key, for CONNECT, plain HTTP and upgrades; with it, the request is served", async () => {
  const key = "a".repeat(16) + "0123456789abcdef0123456789abcdef";
  const keyed = await startFirewall({ agentKey: key });
  const basic = (user: string, pass: string) => ({ "Proxy-Authorization": `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}` });
  for (const headers of [{}, basic("bb", key.slice(0, -1) + "0"), basic("bb", ""), { "Proxy-Authorization": `Bearer ${key}` }]) {
    const t = await connectTunnel(keyed, "api.example.test:443", headers);
    assert.ok("refused" in t, JSON.stringify(headers));
    assert.equal(t.refused.status, 407);
    assert.equal(t.refused.headers["proxy-authenticate"], 'Basic realm="bot-bottle"');
    assert.match(t.refused.body, /serves only its bottle's agent/);
    assert.ok(!t.refused.body.includes(key.slice(0, 8)));
  }
  const before = upstream.requests.length;
  const plain = await plainVia(keyed);
  const res = await plain.request("POST", "http://plain.example.test/form", { host: "plain.example.test" }, "hello");
  assert.equal(res.status, 407);
  plain.socket.destroy();
  const ws = await plainVia(keyed);
  const up = await ws.request("GET", "http://ws.example.test/", { host: "ws.example.test", upgrade: "websocket", connection: "upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" });
  assert.equal(up.status, 407);
  ws.socket.destroy();
  assert.equal(upstream.requests.length, before, "a keyless request reached the upstream");
  // One line per host asked for (the four CONNECTs are one, its repeats counted), no key in any.
  const keyless = logs.filter((l) => /no agent key \(407\)/.test(l));
  assert.deepEqual(keyless.map((l) => /blocked (\S+ \S+): no agent key \(407\) from 127\.0\.0\.1:/.exec(l)?.[1]), ["CONNECT api.example.test", "POST plain.example.test", "GET ws.example.test"]);
  assert.ok(!logs.some((l) => l.includes(key.slice(16))));
  // With the key (any user name), the tunnel opens and the request is served.
  const t = await connectTunnel(keyed, "api.example.test:443", basic("anyone", key));
  assert.ok("socket" in t, JSON.stringify(t));
  const c = new RawHttp(await tlsOver(t.socket, "api.example.test", bottleCa.certPem));
  assert.equal((await c.request("GET", "/keyed", H)).status, 200);
  c.socket.destroy();
  const ok = await plainVia(keyed);
  assert.equal((await ok.request("GET", "http://plain.example.test/k", { host: "plain.example.test", ...basic("bb", key) })).status, 200);
  assert.equal(plainUpstream.requests.at(-1)!.headers["proxy-authorization"], undefined, "the key went on to the upstream");
  ok.socket.destroy();
});

test("plain HTTP absolute-form requests are scanned and forwarded", async () => {
  const c = await plainVia(port);
  const ok = await c.request("POST", "http://plain.example.test/form?a=1", { host: "plain.example.test" }, "hello");
  assert.equal(ok.status, 200);
  assert.equal(plainUpstream.requests.at(-1)!.url, "/form?a=1");
  assert.equal(plainUpstream.requests.at(-1)!.body, "hello");
  const bad = await c.request("POST", "http://plain.example.test/form", { host: "plain.example.test" }, `token=${positives[0]!.sample}`);
  assert.equal(bad.status, 403);
  assert.match(bad.body, /detector aws matched in body/);
  c.socket.destroy();
});

test("plain HTTP inside a CONNECT tunnel (no TLS) is parsed, scanned and forwarded as http", async () => {
  const t = await connectTunnel(port, "plain.example.test:80");
  assert.ok("socket" in t);
  const c = new RawHttp(t.socket);
  assert.equal((await c.request("GET", "/in-tunnel", { host: "plain.example.test" })).status, 200);
  assert.equal(plainUpstream.requests.at(-1)!.url, "/in-tunnel");
  const bad = await c.request("GET", "/", { host: "plain.example.test", "x-token": positives.find((p) => p.detector === "gitlab")!.sample });
  assert.equal(bad.status, 403);
  assert.match(bad.body, /detector gitlab matched in header x-token/);
  c.socket.destroy();
});

test("a WebSocket upgrade inside intercepted TLS round-trips frames; a secret in the upgrade is blocked", async () => {
  const ws = { host: "ws.example.test", upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" };
  const c = await httpsVia(port, "ws.example.test", bottleCa.certPem);
  const res = await c.request("GET", "/chat", ws);
  assert.equal(res.status, 101);
  assert.equal(res.headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  c.socket.write(wsFrame("hello through the firewall", true));
  assert.equal(await c.readFrame(), "echo: hello through the firewall");
  c.socket.destroy();

  const d = await httpsVia(port, "ws.example.test", bottleCa.certPem);
  const blocked = await d.request("GET", `/chat?token=${positives.find((p) => p.detector === "slack")!.sample}`, ws);
  assert.equal(blocked.status, 403);
  assert.match(blocked.body, /detector slack matched in url/);
  d.socket.destroy();
});

test("a plain-HTTP WebSocket upgrade through the proxy (absolute form) round-trips frames", async () => {
  const c = await plainVia(port);
  const res = await c.request("GET", "http://plain.example.test/ws", {
    host: "plain.example.test",
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-version": "13",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
  });
  assert.equal(res.status, 101);
  c.socket.write(wsFrame("plain hello", true));
  assert.equal(await c.readFrame(), "echo: plain hello");
  assert.equal(plainUpstream.requests.at(-1)!.url, "/ws");
  c.socket.destroy();
});

test("a host is reachable only on its ports: 80 and 443 unless it lists others, passthrough hosts too", async () => {
  for (const target of ["ws.example.test:22", "pass.example.test:8443", "api.example.test:8080"]) {
    const t = await connectTunnel(port, target);
    assert.ok("refused" in t, `CONNECT ${target} was let through`);
    assert.equal(t.refused.status, 403);
    assert.match(t.refused.body, /port \d+ is not allowed for \S+ \(allowed: /, target);
  }
  const listed = await connectTunnel(port, "api.example.test:8443");
  assert.ok("socket" in listed, "a port the host lists is refused");
  listed.socket.destroy();
  const c = await plainVia(port);
  const plain = await c.request("GET", "http://plain.example.test:8080/", { host: "plain.example.test:8080" });
  assert.equal(plain.status, 403);
  assert.match(plain.body, /port 8080 is not allowed for plain\.example\.test \(allowed: 80, 443;/);
  c.socket.destroy();
});

const WS = { host: "ws.example.test", upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" };

/** A WebSocket session to the fake upstream through the firewall, and what the upstream saw so far. */
async function wsSession(extra: Record<string, string> = {}, via = port) {
  const c = await httpsVia(via, "ws.example.test", bottleCa.certPem);
  const res = await c.request("GET", "/chat", { ...WS, ...extra });
  assert.equal(res.status, 101);
  return { c, seenBefore: upstream.wsFrames.length };
}

/** The firewall's close frame: code and reason. */
async function closeOf(c: RawHttp): Promise<{ code: number; reason: string }> {
  const f = await c.readWsFrame();
  assert.equal(f.opcode, 8, `expected a close frame, got opcode ${f.opcode}`);
  return { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString() };
}

test("every WebSocket message the agent sends is scanned: a secret is refused with close 1008 and never reaches the upstream", async () => {
  const slack = positives.find((p) => p.detector === "slack")!.sample;
  const aws = positives.find((p) => p.detector === "aws")!.sample;
  const cases: { name: string; frames: Buffer[] }[] = [
    { name: "text message", frames: [wsFrame(`{"note":"${slack}"}`, true)] },
    { name: "binary message", frames: [wsFrame(Buffer.from(`bin ${aws} bin`), true, { opcode: 2 })] },
    // Split mid-token: neither half matches alone, the held whole message does.
    { name: "fragmented message", frames: [wsFrame(`{"k":"${slack.slice(0, 12)}`, true, { fin: false }), wsFrame(`${slack.slice(12)}"}`, true, { opcode: 0 })] },
    { name: "ping", frames: [wsFrame(slack, true, { opcode: 9 })] },
  ];
  for (const k of cases) {
    const { c, seenBefore } = await wsSession();
    c.socket.write(Buffer.concat(k.frames));
    const close = await closeOf(c);
    assert.equal(close.code, 1008, k.name);
    assert.match(close.reason, /detector \S+ matched in websocket/, k.name);
    assert.ok(!close.reason.includes(slack) && !close.reason.includes(aws), `${k.name}: the close reason repeats the secret`);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(upstream.wsFrames.length, seenBefore, `${k.name}: a frame of the blocked message reached the upstream`);
    c.socket.destroy();
  }
});

test("clean WebSocket messages pass byte for byte: large (16-bit and 64-bit lengths), fragmented, with a ping between fragments", async () => {
  const { c, seenBefore } = await wsSession();
  const big = "a ".repeat(40_000); // 80 000 bytes: a 64-bit length
  c.socket.write(wsFrame("x".repeat(300), true));
  assert.equal(await c.readFrame(), `echo: ${"x".repeat(300)}`);
  c.socket.write(Buffer.concat([wsFrame("part one, ", true, { fin: false }), wsFrame("are you there?", true, { opcode: 9 }), wsFrame("part two", true, { opcode: 0 })]));
  c.socket.write(wsFrame(big, true));
  await until("the upstream given all five frames", () => upstream.wsFrames.length >= seenBefore + 5, { why: () => `it has ${upstream.wsFrames.length - seenBefore}` });
  assert.deepEqual(upstream.wsFrames.slice(seenBefore), ["x".repeat(300), "are you there?", "part one, ", "part two", big]);
  c.socket.destroy();
});

test("a WebSocket message of 1 MiB or more goes to the scan worker: a secret at its end closes with 1008, a clean one arrives whole; with no worker the firewall scans it itself", async () => {
  const aws = positives.find((p) => p.detector === "aws")!.sample;
  const clean = "lorem ipsum ".repeat(Math.ceil((2 * OFF_THREAD_BYTES) / 12));
  const brokenLogs: string[] = [];
  const broken = await startFirewall({
    scanWorker: new URL("./no-such-worker.js", import.meta.url),
    log: createLogger({ level: "info", write: (t) => void brokenLogs.push(t) }),
  });
  for (const [name, via] of [["worker", port], ["no worker", broken]] as const) {
    const { c, seenBefore } = await wsSession({}, via);
    c.socket.write(wsFrame(clean, true, { opcode: 2 }));
    c.socket.write(wsFrame(`${clean} ${aws}`, true, { opcode: 2 }));
    const close = await closeOf(c);
    assert.equal(close.code, 1008, name);
    assert.match(close.reason, /^detector aws matched in websocket binary message/, name);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(upstream.wsFrames.slice(seenBefore).map((f) => f === clean), [true], `${name}: not just the clean message reached the upstream`);
    c.socket.destroy();
  }
  assert.ok(!logs.some((l) => /scan worker failed/.test(l)), logs.join("\n"));
  // Said once, the second failure counted (lib/log-limit.ts).
  assert.equal(brokenLogs.filter((l) => /^warning: scanning a large body or message on the firewall's own thread: the scan worker failed/.test(l)).length, 1, brokenLogs.join("\n"));
});

test("only WebSocket upgrades pass, without compression; a compressed or unmasked frame is refused with 1002", async () => {
  const c = await httpsVia(port, "ws.example.test", bottleCa.certPem);
  const h2c = await c.request("GET", "/", { host: "ws.example.test", upgrade: "h2c", connection: "Upgrade, HTTP2-Settings", "http2-settings": "AAMAAABkAAQAoAAAAAIAAAAA" });
  assert.equal(h2c.status, 403);
  assert.match(h2c.body, /upgrade to "h2c" is refused: only WebSocket traffic can be scanned/);
  c.socket.destroy();

  const compressed = await wsSession({ "sec-websocket-extensions": "permessage-deflate; client_max_window_bits" });
  assert.equal(upstream.requests.at(-1)!.headers["sec-websocket-extensions"], undefined, "the compression offer reached the upstream");
  compressed.c.socket.write(wsFrame("deflated?", true, { rsv1: true }));
  const rsv = await closeOf(compressed.c);
  assert.equal(rsv.code, 1002);
  assert.match(rsv.reason, /RSV bit set/);
  compressed.c.socket.destroy();

  const unmasked = await wsSession();
  unmasked.c.socket.write(wsFrame("not masked", false));
  assert.equal((await closeOf(unmasked.c)).code, 1002);
  assert.equal(upstream.wsFrames.length, unmasked.seenBefore);
  unmasked.c.socket.destroy();
});

test("a body over the size limit is refused with 413 and a reason", async () => {
  const p = await startFirewall({ maxBodyBytes: 1024 });
  const c = await httpsVia(p, "api.example.test", bottleCa.certPem);
  const res = await c.request("POST", "/", H, "x".repeat(4096));
  assert.equal(res.status, 413);
  assert.match(res.body, /too large to scan/);
  c.socket.destroy();
});

test("a compressed body is scanned decompressed; an encoding the firewall cannot read is refused", async () => {
  const c = await api();
  const npm = positives.find((p) => p.detector === "npm")!.sample;
  const gz = await c.request("POST", "/", { ...H, "content-encoding": "gzip" }, zlib.gzipSync(`{"t":"${npm}"}`));
  assert.equal(gz.status, 403);
  assert.match(gz.body, /detector npm matched in body/);
  const okGz = await c.request("POST", "/", { ...H, "content-encoding": "br" }, zlib.brotliCompressSync("just text"));
  assert.equal(okGz.status, 200);
  const zstd = await c.request("POST", "/", { ...H, "content-encoding": "zstd" }, "not really zstd");
  assert.equal(zstd.status, 403);
  assert.match(zstd.body, /content-encoding zstd, which the firewall cannot scan/);
  c.socket.destroy();
});

test("the Host header inside a tunnel cannot name another host (no domain fronting)", async () => {
  const c = await api();
  assert.equal((await c.request("GET", "/front", { host: "evil.test" })).status, 200);
  assert.equal(upstream.requests.at(-1)!.headers.host, "api.example.test");
  c.socket.destroy();
});

test("an unreachable upstream gives 502 naming the host; a request to the proxy itself gets 400", async () => {
  const c = await httpsVia(port, "down.example.test", bottleCa.certPem);
  const res = await c.request("GET", "/", { host: "down.example.test" });
  assert.equal(res.status, 502);
  assert.match(res.body, /cannot reach down\.example\.test/);
  c.socket.destroy();
  const d = await plainVia(port);
  const self = await d.request("GET", "/", { host: "localhost" });
  assert.equal(self.status, 400);
  assert.match(self.body, /this is an HTTP proxy/);
  d.socket.destroy();
});

test("without egress the firewall never dials a name that resolves only to loopback (or link-local): 502 naming the addresses, nothing reaches the listener there", async () => {
  const at = plainUpstream.port;
  const seen = plainUpstream.requests.length;
  const direct = await startFirewall({ policy: policyOf([{ host: "localhost", tlsPassthrough: false, ports: [at] }]), resolve: new Map() });
  const c = await plainVia(direct);
  const res = await c.request("GET", `http://localhost:${at}/metadata`, { host: `localhost:${at}` });
  assert.equal(res.status, 502, res.body);
  assert.match(res.body, /localhost resolves only to 127\.0\.0\.1 \(loopback\)(?:, ::1 \(loopback\))?, which the firewall never dials/);
  c.socket.destroy();
  assert.equal(plainUpstream.requests.length, seen, "the request reached the loopback listener");
  const connections = plainUpstream.connections();
  const passthrough = await startFirewall({ policy: policyOf([{ host: "localhost", tlsPassthrough: true, ports: [at] }]), resolve: new Map() });
  const t = await connectTunnel(passthrough, `localhost:${at}`);
  assert.ok("refused" in t && t.refused.status === 502, "refused" in t ? t.refused.body : "the tunnel opened");
  assert.match(t.refused.body, /which the firewall never dials/);
  assert.equal(plainUpstream.connections(), connections, "a passthrough tunnel reached the loopback listener");
  // Control: the same listener named by a --resolve mapping (the operator's word) is reached.
  const mapped = await startFirewall({ policy: policyOf([{ host: "localhost", tlsPassthrough: false, ports: [at] }]), resolve: new Map([["localhost", { host: "127.0.0.1", port: at }]]) });
  const m = await plainVia(mapped);
  assert.equal((await m.request("GET", `http://localhost:${at}/ok`, { host: `localhost:${at}` })).status, 200);
  m.socket.destroy();
});

test("with a next hop, requests leave in absolute form and passthrough tunnels as CONNECT (the egress contract)", async () => {
  const egress = await startUpstream(); // records the request line egress receives
  const connects: string[] = [];
  egress.server.on("connect", (req, socket: net.Socket, head: Buffer) => {
    connects.push(req.url!);
    const up = net.connect(upstream.port, "127.0.0.1", () => {
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      up.write(head);
      socket.pipe(up).pipe(socket);
    });
  });
  try {
    const p = await startFirewall({ nextHop: { host: "127.0.0.1", port: egress.port }, resolve: new Map() });
    const c = await httpsVia(p, "api.example.test", bottleCa.certPem);
    assert.equal((await c.request("POST", "/v1/x?y=1", H, "body")).status, 200);
    assert.equal((await c.request("GET", "/v1/again", H)).status, 200);
    c.socket.destroy();
    const alt = await httpsVia(p, "api.example.test", bottleCa.certPem, 8443);
    assert.equal((await alt.request("GET", "/port", { host: "api.example.test:8443" })).status, 200);
    alt.socket.destroy();
    const plain = await plainVia(p);
    assert.equal((await plain.request("GET", "http://plain.example.test/p", { host: "plain.example.test" })).status, 200);
    plain.socket.destroy();
    assert.deepEqual(
      egress.requests.map((r) => `${r.method} ${r.url} host=${r.headers.host}`),
      [
        "POST https://api.example.test/v1/x?y=1 host=api.example.test",
        "GET https://api.example.test/v1/again host=api.example.test",
        "GET https://api.example.test:8443/port host=api.example.test:8443",
        "GET http://plain.example.test/p host=plain.example.test",
      ],
    );
    assert.equal(egress.requests[0]!.body, "body");
    assert.equal(egress.connections(), 1, "sequential requests share one keep-alive connection to egress");

    const t = await connectTunnel(p, "pass.example.test:443");
    assert.ok("socket" in t);
    const tunneled = new RawHttp(await tlsOver(t.socket, "pass.example.test", upstreamCa.certPem));
    assert.equal((await tunneled.request("GET", "/through-egress", { host: "pass.example.test" })).status, 200);
    tunneled.socket.destroy();
    assert.deepEqual(connects, ["pass.example.test:443"]);
  } finally {
    await egress.close();
  }
});

test("on a routed host the credential headers egress replaces are not scanned, every other header still is", async () => {
  const jwt = positives.find((p) => p.detector === "jwt")!.sample;
  const routed: FirewallPolicy = {
    ...POLICY,
    hosts: [
      { host: "api.example.test", tlsPassthrough: false, routed: true, replacedHeaders: ["authorization", "x-api-key"] },
      { host: "a.wild.test", tlsPassthrough: false, routed: false },
    ],
  };
  const p = await startFirewall({ policy: routed });
  const c = await httpsVia(p, "api.example.test", bottleCa.certPem);
  const ok = await c.request("GET", "/v1/models", { ...H, authorization: `Bearer ${jwt}` });
  assert.equal(ok.status, 200, "a placeholder JWT in the header egress replaces must pass");
  const other = await c.request("GET", "/v1/models", { ...H, "x-forwarded-token": jwt });
  assert.equal(other.status, 403);
  assert.match(other.body, /detector jwt matched in header x-forwarded-token/);
  c.socket.destroy();
  const u = await httpsVia(p, "a.wild.test", bottleCa.certPem);
  const unrouted = await u.request("GET", "/", { ...H, host: "a.wild.test", authorization: `Bearer ${jwt}` });
  assert.equal(unrouted.status, 403, "an unrouted host's authorization header is scanned");
  u.socket.destroy();
});

test("with a next hop, answers come back de-framed and re-framed: chunked in pieces, a 204, headers the next hop's Connection names dropped, one keep-alive connection", async () => {
  let connections = 0;
  const hop = http.createServer((req, res) => {
    if (req.url!.endsWith("/empty")) return void res.writeHead(204, { "x-kept": "yes" }).end();
    res.writeHead(200, { connection: "keep-alive, x-hop", "x-hop": "per-connection", "x-kept": "yes" });
    res.write("first ");
    setTimeout(() => res.end("second"), 5);
  });
  hop.on("connection", () => connections++);
  await new Promise<void>((r) => hop.listen(0, "127.0.0.1", r));
  try {
    const p = await startFirewall({ nextHop: { host: "127.0.0.1", port: (hop.address() as net.AddressInfo).port }, resolve: new Map() });
    const c = await httpsVia(p, "api.example.test", bottleCa.certPem);
    for (let i = 0; i < 2; i++) {
      const r = await c.request("GET", "/chunked", H);
      assert.deepEqual([r.status, r.body, r.headers["x-kept"], r.headers["x-hop"]], [200, "first second", "yes", undefined]);
      const empty = await c.request("GET", "/empty", H);
      assert.deepEqual([empty.status, empty.body, empty.headers["x-kept"]], [204, "", "yes"]);
    }
    c.socket.destroy();
    assert.equal(connections, 1);
  } finally {
    hop.closeAllConnections();
    hop.close();
  }
});
