// Requests node's HTTP parser gives up on (client-error.ts), on the plain proxy and inside
// an intercepted TLS tunnel, in process on loopback: the agent reads one line saying why
// (with `connection: close`) and meets no reset though it is still sending, and an answer
// in flight for an earlier request is never cut in on.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { after, describe, it } from "node:test";
import { createLogger } from "../../lib/log.ts";
import { mintCa } from "../../lib/tls/mod.ts";
import { httpsVia, plainVia, type RawHttp } from "../../tests/support/raw-http.ts";
import { until } from "../../tests/support/until.ts";
import { firewallPool, policyOf, startTlsUpstream, startUpstream, watchConnection as watch } from "./test-harness.ts";

const MiB = 1024 * 1024;
const HOST = "up.test";
const PLAIN = "plain.test";
const bottleCa = await mintCa({ commonName: "client-error bottle CA" });
const { upstream, ca: upstreamCa } = await startTlsUpstream([HOST]);
const plainUpstream = await startUpstream();
after(() => {
  upstream.release();
  plainUpstream.release();
});
const startFirewall = firewallPool(
  {
    policy: policyOf([HOST, PLAIN]),
    ca: bottleCa,
    upstreamCa: [upstreamCa],
    log: createLogger({ level: "info", write: () => {} }),
    resolve: new Map([[HOST, { host: "127.0.0.1", port: upstream.port }], [PLAIN, { host: "127.0.0.1", port: plainUpstream.port }]]),
  },
  [upstream, plainUpstream],
);

const VIAS = ["plain", "tls"] as const;
type Via = (typeof VIAS)[number];
const client = (port: number, via: Via) => (via === "tls" ? httpsVia(port, HOST, bottleCa.certPem) : plainVia(port));
/** A target as the agent writes it on `via`: absolute-form to the proxy, origin-form in a tunnel. */
const target = (via: Via, path: string) => (via === "tls" ? path : `http://${PLAIN}${path}`);

/** Write `bytes` in one go (most still in the client's buffers when the firewall answers),
 * read the answer, then wait for the connection to close. */
async function sendAll(c: RawHttp, bytes: Buffer) {
  const seen = watch(c.socket);
  c.socket.write(bytes);
  const res = await c.readResponse();
  await until("the connection closed", seen.closed);
  return { res, errors: seen.errors };
}

describe("a request the firewall cannot parse, the agent still sending", () => {
  for (const via of VIAS) {
    it(`a malformed request line, 8 MiB behind it (${via}): a 400 that says why, connection: close, no reset`, async () => {
      const c = await client(await startFirewall(), via);
      const { res, errors } = await sendAll(c, Buffer.concat([Buffer.from(`P@ST ${target(via, "/x")} HTTP/1.1\r\n\r\n`), Buffer.alloc(8 * MiB, "x")]));
      assert.equal(res.status, 400, res.body);
      assert.equal(res.headers.connection, "close");
      // node names the fault (invalid method); Deno's parser says only "Parse Error".
      assert.match(res.body, /^bot-bottle firewall: cannot take the request: the firewall cannot parse it: .+ \(HPE_[A-Z_]+\)\n$/);
      assert.deepEqual(errors, [], "the client's connection failed");
    });

    it(`a header block over 64 KiB, a body behind it (${via}): a 431 that says so, no reset`, async () => {
      const c = await client(await startFirewall(), via);
      const head = `POST ${target(via, "/x")} HTTP/1.1\r\nHost: ${via === "tls" ? HOST : PLAIN}\r\nx-big: ${"a".repeat(96 * 1024)}\r\ncontent-length: ${4 * MiB}\r\n\r\n`;
      const { res, errors } = await sendAll(c, Buffer.concat([Buffer.from(head), Buffer.alloc(4 * MiB, "x")]));
      assert.equal(res.status, 431, res.body);
      assert.equal(res.headers.connection, "close");
      assert.equal(res.body, "bot-bottle firewall: cannot take the request: its header block is over 64 KiB\n");
      assert.deepEqual(errors, [], "the client's connection failed");
    });

    for (const after of ["on a new connection", "after an answer on a kept-alive one"]) {
      it(`a request head that does not arrive in time, ${after} (${via}): a 408 that says so`, async () => {
        const c = await client(await startFirewall({ timeouts: { headersMs: 600 } }), via);
        const seen = watch(c.socket);
        const host = via === "tls" ? HOST : PLAIN;
        if (after !== "on a new connection") assert.equal((await c.request("GET", target(via, "/first"), { Host: host })).status, 200);
        c.socket.write(`GET ${target(via, "/slow")} HTTP/1.1\r\nHost: ${host}\r\n`);
        const res = await c.readResponse();
        assert.equal(res.status, 408, res.body);
        assert.equal(res.headers.connection, "close");
        assert.equal(res.body, "bot-bottle firewall: cannot take the request: it did not arrive whole in the time allowed\n");
        await until("the connection closed", seen.closed);
        assert.deepEqual(seen.errors, []);
      });
    }

    it(`a malformed request pipelined behind one still waiting for its upstream (${via}): that answer first, whole, then the 400`, async () => {
      const up = via === "tls" ? upstream : plainUpstream;
      const c = await client(await startFirewall(), via);
      const seen = watch(c.socket);
      const held = up.held();
      c.socket.write(`GET ${target(via, "/hold-pipelined")} HTTP/1.1\r\nHost: ${via === "tls" ? HOST : PLAIN}\r\n\r\nP@ST / HTTP/1.1\r\n\r\n`);
      await until("the first request reached the upstream", () => up.held() === held + 1);
      up.release();
      const first = await c.readResponse();
      assert.equal(first.status, 200, first.body);
      assert.equal(JSON.parse(first.body).path, "/hold-pipelined");
      const second = await c.readResponse();
      assert.equal(second.status, 400, second.body);
      assert.match(second.body, /cannot parse it/);
      await until("the connection closed", seen.closed);
      assert.deepEqual(seen.errors, []);
    });
  }
});

describe("a request the agent gives up on", () => {
  for (const via of VIAS) {
    it(`an agent that ends its side mid-body (${via}): closed at once, nothing answered`, async () => {
      const c = await client(await startFirewall(), via);
      const seen = watch(c.socket);
      let got = 0;
      c.socket.on("data", (d: Buffer) => (got += d.length));
      c.socket.allowHalfOpen = true; // it could still read an answer: none must come
      c.socket.end(`POST ${target(via, "/gone")} HTTP/1.1\r\nHost: ${via === "tls" ? HOST : PLAIN}\r\ncontent-length: 100\r\n\r\nabc`);
      await until("the firewall closed the connection", seen.closed);
      assert.equal(got, 0, "an answer was written to an agent that had gone");
    });
  }
});

describe("the linger after a parser's answer", () => {
  for (const via of VIAS) {
    it(`an agent that floods after a malformed request is cut past maxBytes (${via})`, async () => {
      const c = await client(await startFirewall({ linger: { quietMs: 60_000, totalMs: 60_000, maxBytes: 4 * MiB } }), via);
      const seen = watch(c.socket);
      c.socket.allowHalfOpen = true; // the firewall's end alone does not stop the sending
      c.socket.write("P@ST / HTTP/1.1\r\n\r\n");
      assert.equal((await c.readResponse()).status, 400);
      const piece = Buffer.alloc(64 * 1024, "x");
      const go = () => {
        while (!c.socket.destroyed && c.socket.write(piece));
        if (!c.socket.destroyed) c.socket.once("drain", go);
      };
      go();
      // Quiet and total time are a minute: only the byte bound ends it this soon.
      await until("the firewall cut the connection", seen.closed, { timeoutMs: 20_000 });
      assert.ok(c.socket.bytesWritten > 4 * MiB, `cut after ${c.socket.bytesWritten} bytes`);
    });
  }
});
