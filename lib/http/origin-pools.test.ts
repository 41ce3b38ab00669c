// egress's per-origin pools against a real TLS server on loopback: the table's bound (pools
// with no idle connection let go first, then the one used least recently, idle connection
// and all), and a second connection to an origin resuming the first one's TLS session.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import tls from "node:tls";
import process from "node:process";
import { after, test } from "node:test";
import { skipWhen } from "../../tests/support/skip.ts";
import { mintCa, mintLeaf } from "../tls/mod.ts";
import { clientContext } from "../tls/ciphers.ts";
import type { HopClient, HopResponse } from "./hop-client.ts";
import { createOriginPools, type OriginPools } from "./origin-pools.ts";

const NAMES = ["a.test", "b.test", "c.test", "d.test"];

interface Conn {
  servername: string;
  resumed: boolean;
  closed: boolean;
}

/** A TLS server answering every request "ok" over keep-alive; it records each connection. */
async function tlsServer() {
  const ca = await mintCa({ commonName: "origin-pools test CA" });
  const leaf = await mintLeaf({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, hosts: NAMES });
  const conns: Conn[] = [];
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (s) => {
    const c: Conn = { servername: String(s.servername), resumed: s.isSessionReused(), closed: false };
    conns.push(c);
    sockets.add(s);
    s.on("close", () => {
      c.closed = true;
      sockets.delete(s);
    });
    s.on("error", () => {});
    let buf = "";
    s.on("data", (b: Buffer) => {
      buf += b.toString("latin1");
      for (let end = buf.indexOf("\r\n\r\n"); end !== -1; end = buf.indexOf("\r\n\r\n")) {
        buf = buf.slice(end + 4);
        s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { ca: ca.certPem, port, conns };
}

function poolsTo(ca: string, maxPools?: number): OriginPools {
  const context = clientContext([ca]);
  const pools = createOriginPools({ secureContext: () => context, connectMs: 5000, maxPools });
  after(() => pools.close());
  return pools;
}

const target = (port: number, name: string) => ({ origin: `https://${name}`, host: "127.0.0.1", port, secure: true, servername: name });

/** One GET through `pool`, its body read to the end. */
function get(pool: HopClient, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = pool.request({ method: "GET", target: "/", headers: { host: name } });
    req.on("error", reject);
    req.on("response", (r: HopResponse) => {
      const chunks: Buffer[] = [];
      r.body.on("data", (c: Buffer) => chunks.push(c));
      r.body.on("error", reject);
      r.body.on("end", () => resolve(Buffer.concat(chunks).toString()));
    });
  });
}

async function until(what: string, test: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (test()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test("past the bound, the pools with no idle connection are let go when another is made; one holding an idle connection stays", async () => {
  const s = await tlsServer();
  const pools = poolsTo(s.ca, 3);
  const a = pools.poolFor(target(s.port, "a.test"));
  assert.equal(await get(a, "a.test"), "ok");
  await until("a's connection to go idle", () => a.idle() === 1);
  const b = pools.poolFor(target(s.port, "b.test"));
  pools.poolFor(target(s.port, "c.test"));
  assert.equal(pools.size(), 3);
  pools.poolFor(target(s.port, "d.test"));
  assert.equal(pools.size(), 2, "b and c (no idle connection) let go, a and d kept");
  assert.equal(pools.poolFor(target(s.port, "a.test")), a);
  assert.notEqual(pools.poolFor(target(s.port, "b.test")), b, "b was let go: a new pool");
  assert.ok(pools.size() <= 3);
});

test("when every pool holds an idle connection, the one used least recently is closed, connection and all, to make room", async () => {
  const s = await tlsServer();
  const pools = poolsTo(s.ca, 2);
  const a = pools.poolFor(target(s.port, "a.test"));
  const b = pools.poolFor(target(s.port, "b.test"));
  assert.equal(await get(a, "a.test"), "ok");
  assert.equal(await get(b, "b.test"), "ok");
  // a is used again: b is now the least recently used.
  assert.equal(await get(pools.poolFor(target(s.port, "a.test")), "a.test"), "ok");
  await until("both connections to go idle", () => a.idle() === 1 && b.idle() === 1);
  const c = pools.poolFor(target(s.port, "c.test"));
  assert.equal(pools.size(), 2, "the table stays at its bound");
  assert.equal(b.idle(), 0, "b's idle connection is closed");
  await until("the server to see b's connection close", () => s.conns.filter((x) => x.servername === "b.test").every((x) => x.closed));
  assert.equal(a.idle(), 1, "a keeps its connection");
  assert.ok(!s.conns.find((x) => x.servername === "a.test")!.closed);
  assert.equal(pools.poolFor(target(s.port, "a.test")), a);
  assert.equal(pools.poolFor(target(s.port, "c.test")), c);
  assert.equal(await get(c, "c.test"), "ok");
});

const RESUMES = "a pool's second connection resumes the TLS session of its first";
// Deno's node:tls hands out a stub for a session and never resumes one: egress under Deno
// makes every connection with a full handshake (checked: a second connection reports no reuse).
const noResumption = process.versions.deno ? "Deno's node:tls does not resume TLS sessions" : false;
test(RESUMES, skipWhen(noResumption, RESUMES), async () => {
  const s = await tlsServer();
  const pools = poolsTo(s.ca);
  const a = pools.poolFor(target(s.port, "a.test"));
  assert.equal(await get(a, "a.test"), "ok");
  // Two at once: one takes the idle connection, the other dials a second one.
  assert.deepEqual(await Promise.all([get(a, "a.test"), get(a, "a.test")]), ["ok", "ok"]);
  assert.deepEqual(
    s.conns.map((c) => c.resumed),
    [false, true],
  );
});
