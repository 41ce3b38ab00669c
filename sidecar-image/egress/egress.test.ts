// egress as a real process against a fake HTTPS upstream with its own test CA, all on
// 127.0.0.1: what arrives upstream is what the fake echoes back in its response body.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ANY_EXIT, run, start } from "../../lib/proc.ts";
import { tsArgv } from "../../lib/supervise/testdata/ts-argv.ts";
import { environOf, REPO_ROOT, signalPid, startDaemon, tsNodeArgv, type DaemonProcess } from "../../tests/support/daemon-process.ts";
import { connectTunnel, plainVia, RawHttp } from "../../tests/support/raw-http.ts";
import { wsFrame } from "../../tests/support/ws-frame.mjs";
import { mintTestPki } from "./testdata/pki.ts";

const TOKENS = {
  EGRESS_TOKEN_0: "tok-bearer-REAL-0",
  EGRESS_TOKEN_1: "tok-xapikey-REAL-1",
  EGRESS_TOKEN_2: "alice:s3cret-REAL-2",
  EGRESS_TOKEN_3: "ghp-forge-REAL-3",
  EGRESS_TOKEN_4: "tok-header-REAL-4",
  EGRESS_TOKEN_5: "tok-reloaded-REAL-5",
};
const PLACEHOLDER = "PLACEHOLDER-agent-credential";
const HTTPS_NAMES = ["api.example.test", "key.example.test", "basic.example.test", "forge.example.test", "hdr.example.test", "open.example.test", "empty.example.test"];

function routes(apiSlot = "EGRESS_TOKEN_0") {
  return {
    version: 1,
    routes: [
      { host: "api.example.test", auth: "bearer", header: null, slot: apiSlot },
      { host: "key.example.test", auth: "x-api-key", header: null, slot: "EGRESS_TOKEN_1" },
      { host: "basic.example.test", auth: "basic", header: null, slot: "EGRESS_TOKEN_2" },
      { host: "forge.example.test", auth: "basic", header: null, slot: "EGRESS_TOKEN_3" },
      { host: "hdr.example.test", auth: "header", header: "X-Private-Token", slot: "EGRESS_TOKEN_4" },
      { host: "empty.example.test", auth: "bearer", header: null, slot: "EGRESS_TOKEN_9" },
      { host: "rogue.example.test", auth: "bearer", header: null, slot: "EGRESS_TOKEN_0" },
    ],
  };
}

interface Seen {
  method: string;
  url: string;
  headers: [string, string][];
  body: string;
}

/** The fake upstream's report (hex, so egress's masking of echoed credentials leaves it alone). */
function report(body: string): Seen {
  return JSON.parse(Buffer.from(body, "hex").toString("utf8")) as Seen;
}

function header(seen: Seen, name: string): string[] {
  return seen.headers.filter(([k]) => k.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
}

// What an agent holding placeholders sends: both usual credential headers at once.
const AGENT_CREDS = { Authorization: `Bearer ${PLACEHOLDER}`, "x-api-key": PLACEHOLDER };

describe("egress (real process, real TLS)", () => {
  let dir: string;
  let upstream: ChildProcess;
  let ports: { https: number; http: number; rogue: number; echo: number };
  let egress: DaemonProcess;
  let routesFile: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bb-egress-test-"));
    const pki = await mintTestPki(dir, HTTPS_NAMES);
    upstream = start(tsNodeArgv(join(REPO_ROOT, "sidecar-image/egress/testdata/fake-upstream.ts"), [pki.cert, pki.key, pki.rogueCert, pki.rogueKey]), {
      stdio: ["ignore", "pipe", "inherit"],
    });
    ports = await new Promise((resolve, reject) => {
      let out = "";
      upstream.stdout!.on("data", (b: Buffer) => {
        out += b.toString();
        if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0]!));
      });
      upstream.once("exit", (c) => reject(new Error(`fake upstream exited ${c}`)));
    });
    routesFile = join(dir, "routes.json");
    await writeFile(routesFile, JSON.stringify(routes()));
    const resolve = [
      ...HTTPS_NAMES.map((n) => `--resolve=${n}=127.0.0.1:${ports.https}`),
      `--resolve=plain.example.test=127.0.0.1:${ports.http}`,
      `--resolve=rogue.example.test=127.0.0.1:${ports.rogue}`,
      `--resolve=tunnel.example.test=127.0.0.1:${ports.echo}`,
    ];
    egress = await startDaemon(
      join(REPO_ROOT, "sidecar-image/egress/main.ts"),
      ["--listen", "127.0.0.1:0", "--routes", routesFile, "--extra-ca", pki.caCert, ...resolve],
      { ...TOKENS, BB_LOG_LEVEL: "debug" },
    );
  });

  after(async () => {
    await egress?.stop();
    if (upstream && upstream.exitCode === null) {
      const gone = new Promise((r) => upstream.once("exit", r));
      signalPid(upstream, "SIGTERM");
      await gone;
    }
    await rm(dir, { recursive: true, force: true });
  });

  async function via(method: string, url: string, headers: Record<string, string> = {}, body?: string) {
    const conn = await plainVia(egress.port);
    try {
      return await conn.proxyRequest(method, url, headers, body);
    } finally {
      conn.socket.destroy();
    }
  }

  async function seenUpstream(url: string, headers: Record<string, string> = AGENT_CREDS): Promise<Seen> {
    const res = await via("GET", url, headers);
    assert.equal(res.status, 200, res.body);
    return report(res.body);
  }

  function assertNoPlaceholder(seen: Seen) {
    for (const [k, v] of seen.headers) assert.ok(!v.includes(PLACEHOLDER), `placeholder reached upstream in ${k}`);
  }

  it("bearer route: upstream gets Authorization: Bearer <real token>, never the placeholder", async () => {
    const seen = await seenUpstream("https://api.example.test/v1/models?limit=2");
    assert.deepEqual(header(seen, "authorization"), [`Bearer ${TOKENS.EGRESS_TOKEN_0}`]);
    assert.deepEqual(header(seen, "x-api-key"), []);
    assert.equal(seen.url, "/v1/models?limit=2");
    assertNoPlaceholder(seen);
  });

  it("x-api-key route: upstream gets x-api-key: <real token> and no Authorization", async () => {
    const seen = await seenUpstream("https://key.example.test/v1/messages");
    assert.deepEqual(header(seen, "x-api-key"), [TOKENS.EGRESS_TOKEN_1]);
    assert.deepEqual(header(seen, "authorization"), []);
    assertNoPlaceholder(seen);
  });

  it("basic route: user:password token becomes Authorization: Basic base64(user:password)", async () => {
    const seen = await seenUpstream("https://basic.example.test/");
    assert.deepEqual(header(seen, "authorization"), [`Basic ${Buffer.from(TOKENS.EGRESS_TOKEN_2).toString("base64")}`]);
    assertNoPlaceholder(seen);
  });

  it("basic route: a bare token is sent as x-access-token:<token>", async () => {
    const seen = await seenUpstream("https://forge.example.test/");
    assert.deepEqual(header(seen, "authorization"), [`Basic ${Buffer.from(`x-access-token:${TOKENS.EGRESS_TOKEN_3}`).toString("base64")}`]);
    assertNoPlaceholder(seen);
  });

  it("header route: the named header carries the real token; Authorization and x-api-key are removed", async () => {
    const seen = await seenUpstream("https://hdr.example.test/api/v4/user", { ...AGENT_CREDS, "x-private-token": PLACEHOLDER });
    assert.deepEqual(header(seen, "x-private-token"), [TOKENS.EGRESS_TOKEN_4]);
    assert.deepEqual(header(seen, "authorization"), []);
    assert.deepEqual(header(seen, "x-api-key"), []);
    assertNoPlaceholder(seen);
  });

  it("unrouted host: request forwarded untouched (credential, headers, method, body)", async () => {
    const res = await via("POST", "https://open.example.test/upload?x=1", { Authorization: "Bearer agent-own", "X-Custom": "kept" }, "payload-123");
    assert.equal(res.status, 200, res.body);
    const seen = report(res.body);
    assert.equal(seen.method, "POST");
    assert.equal(seen.url, "/upload?x=1");
    assert.equal(seen.body, "payload-123");
    assert.deepEqual(header(seen, "authorization"), ["Bearer agent-own"]);
    assert.deepEqual(header(seen, "x-custom"), ["kept"]);
    assert.deepEqual(header(seen, "host"), ["open.example.test"]);
  });

  it("plain http absolute-form request reaches a plain HTTP upstream", async () => {
    const seen = await seenUpstream("http://plain.example.test/status", { "X-Custom": "plain" });
    assert.equal(seen.url, "/status");
    assert.deepEqual(header(seen, "x-custom"), ["plain"]);
  });

  it("missing token slot: 502 naming the host and the slot, nothing forwarded", async () => {
    const res = await via("GET", "https://empty.example.test/", AGENT_CREDS);
    assert.equal(res.status, 502);
    assert.match(res.body, /empty\.example\.test/);
    assert.match(res.body, /EGRESS_TOKEN_9/);
    assert.ok(!res.body.includes("method"), "the fake upstream must not have answered");
  });

  it("upstream certificate not signed by a trusted CA: 502, credential never sent", async () => {
    const res = await via("GET", "https://rogue.example.test/", AGENT_CREDS);
    assert.equal(res.status, 502);
    assert.match(res.body, /rogue\.example\.test.*does not trust/);
  });

  it("a name that resolves to loopback is never dialed, by request or CONNECT; the same address as an explicit mapping is", async () => {
    // "localhost" comes from /etc/hosts (no DNS query leaves), as 127.0.0.1 and ::1: what
    // an allowed host's own DNS could answer to reach the bundle's loopback.
    for (const url of [`http://localhost:${ports.http}/status`, `https://localhost:${ports.https}/`]) {
      const res = await via("GET", url, AGENT_CREDS);
      assert.equal(res.status, 502, res.body);
      assert.match(res.body, /cannot reach upstream https?:\/\/localhost:\d+: localhost resolves only to 127\.0\.0\.1 \(loopback\)(?:, ::1 \(loopback\))?, which egress never dials/);
    }
    const t = await connectTunnel(egress.port, `localhost:${ports.echo}`);
    assert.ok("refused" in t, "egress opened a tunnel to loopback");
    assert.match(t.refused.body, /localhost resolves only to 127\.0\.0\.1 \(loopback\)/);
    // plain.example.test is mapped to 127.0.0.1 by --resolve: the operator's own word.
    assert.equal((await via("GET", "http://plain.example.test/status")).status, 200);
  });

  it("CONNECT opens a raw byte tunnel", async () => {
    const t = await connectTunnel(egress.port, "tunnel.example.test:443");
    assert.ok("socket" in t, "egress refused the CONNECT");
    const tunnel = new RawHttp(t.socket);
    try {
      const bytes = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0d, 0x0a]);
      tunnel.socket.write(bytes);
      assert.deepEqual(await tunnel.readBytes(bytes.length), bytes);
    } finally {
      tunnel.socket.destroy();
    }
  });

  it("WebSocket upgrade on a routed host: credential injected, then bytes piped both ways", async () => {
    const conn = await plainVia(egress.port);
    try {
      const res = await conn.proxyRequest("GET", "https://api.example.test/ws", {
        Authorization: `Bearer ${PLACEHOLDER}`,
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
      });
      assert.equal(res.status, 101);
      assert.equal(res.headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
      assert.equal(Buffer.from(res.headers["x-seen-authorization-hex"]!, "hex").toString(), `Bearer ${TOKENS.EGRESS_TOKEN_0}`);
      // The fake echoes bytes as they come; an unmasked frame is what egress must then
      // read back as a server's (it re-frames routed WebSockets to mask the credential).
      const frame = wsFrame("ws-frame-bytes", false);
      conn.socket.write(frame);
      assert.deepEqual(await conn.readBytes(frame.length), frame);
    } finally {
      conn.socket.destroy();
    }
  });

  // That no daemon but egress holds a slot is init's to prove (sidecar-image/init/init.test.ts):
  // here only this harness hands out tokens, and the processes below are a check of it.
  it("a second egress on the port the first holds fails in one line that names it once", async () => {
    const r = await run(tsArgv("sidecar-image/egress/main.ts", ["--listen", `127.0.0.1:${egress.port}`]), { expect: ANY_EXIT, timeoutMs: 30_000 });
    assert.deepEqual([r.code, r.stderr], [1, `egress: error: Cannot listen on 127.0.0.1:${egress.port}: EADDRINUSE\n`]);
  });

  it("egress reads its slots and never logs a token", async () => {
    const egressEnv = await environOf(egress.pid);
    for (const [slot, value] of Object.entries(TOKENS)) assert.ok(egressEnv.includes(`${slot}=${value}`), `egress lacks ${slot}`);
    for (const [who, pid] of [["fake upstream", upstream.pid!], ["test process", "self"]] as const) {
      const env = (await environOf(pid)).join("\n");
      for (const value of Object.values(TOKENS)) assert.ok(!env.includes(value), `${who} holds a token`);
      assert.ok(!/^EGRESS_TOKEN_/m.test(env), `${who} has an EGRESS_TOKEN_ slot`);
    }
    for (const value of [...Object.values(TOKENS), Buffer.from(TOKENS.EGRESS_TOKEN_2).toString("base64")]) {
      assert.ok(!egress.stderr().includes(value), "egress logged a token");
    }
  });

  it("SIGHUP reloads routes on a kept-alive connection; a bad routes file (not JSON, or a table egress refuses) keeps the old ones", async () => {
    const conn = await plainVia(egress.port);
    try {
      const first = await conn.proxyRequest("GET", "https://api.example.test/a", AGENT_CREDS);
      assert.deepEqual(header(report(first.body), "authorization"), [`Bearer ${TOKENS.EGRESS_TOKEN_0}`]);

      await writeFile(routesFile, JSON.stringify(routes("EGRESS_TOKEN_5")));
      const reloaded = egress.waitForLog(/routes reloaded/);
      egress.signal("SIGHUP");
      await reloaded;
      const second = await conn.proxyRequest("GET", "https://api.example.test/b", AGENT_CREDS);
      assert.deepEqual(header(report(second.body), "authorization"), [`Bearer ${TOKENS.EGRESS_TOKEN_5}`]);

      await writeFile(routesFile, "{ not json");
      const refused = egress.waitForLog(/reload failed, keeping the previous routes: .*not JSON/);
      egress.signal("SIGHUP");
      await refused;
      const third = await conn.proxyRequest("GET", "https://api.example.test/c", AGENT_CREDS);
      assert.deepEqual(header(report(third.body), "authorization"), [`Bearer ${TOKENS.EGRESS_TOKEN_5}`]);

      // Valid JSON that the route table refuses (a host twice) is a bad file too, not a crash.
      const twice = routes("EGRESS_TOKEN_0");
      await writeFile(routesFile, JSON.stringify({ ...twice, routes: [...twice.routes, twice.routes[0]] }));
      const refusedTable = egress.waitForLog(/reload failed, keeping the previous routes: .*api\.example\.test/);
      egress.signal("SIGHUP");
      await refusedTable;
      const fourth = await conn.proxyRequest("GET", "https://api.example.test/d", AGENT_CREDS);
      assert.deepEqual(header(report(fourth.body), "authorization"), [`Bearer ${TOKENS.EGRESS_TOKEN_5}`]);
      assert.equal(conn.closed, false, "the keep-alive connection must survive every reload");
    } finally {
      conn.socket.destroy();
    }
  });
});
