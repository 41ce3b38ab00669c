// A body written straight onto the client's socket after node's ServerResponse wrote the
// head: only when the bytes go out exactly as they came (one Content-Length, a body to
// send, node's own server), held back while a slow client is full, and the keep-alive
// connection left ready for its next request.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import http from "node:http";
import type net from "node:net";
import process from "node:process";
import { Readable } from "node:stream";
import { after, test } from "node:test";
import { skipWhen } from "../../tests/support/skip.ts";
import { directSocket, relayDirect } from "./direct-body.ts";

const deno = process.versions.deno !== undefined;

async function serve(handler: http.RequestListener): Promise<{ port: number; agent: http.Agent }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  after(() => {
    agent.destroy();
    server.closeAllConnections();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, agent };
}

/** One request; its status, body and whether it went on a connection used before. */
function fetchOne(port: number, agent: http.Agent, method: string, path: string, slow = false): Promise<{ status: number; body: Buffer; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => {
        chunks.push(c);
        if (slow) {
          res.pause();
          setTimeout(() => res.resume(), 1);
        }
      });
      res.on("end", () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), reused: req.reusedSocket }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

test("directSocket(): the client's socket only for a body that goes out as it came, and only on node", async () => {
  const cases: Record<string, { method: string; status: number; rawHeaders: string[]; direct: boolean }> = {
    "a Content-Length answer": { method: "GET", status: 200, rawHeaders: ["Content-Length", "5"], direct: true },
    "an answer to HEAD": { method: "HEAD", status: 200, rawHeaders: ["content-length", "5"], direct: false },
    "a 204": { method: "GET", status: 204, rawHeaders: ["content-length", "0"], direct: false },
    "a 304": { method: "GET", status: 304, rawHeaders: ["content-length", "5"], direct: false },
    "a chunked answer": { method: "GET", status: 200, rawHeaders: ["transfer-encoding", "chunked"], direct: false },
    "an answer without a length": { method: "GET", status: 200, rawHeaders: [], direct: false },
    "two Content-Lengths": { method: "GET", status: 200, rawHeaders: ["content-length", "5", "content-length", "5"], direct: false },
  };
  const wrong: string[] = [];
  const { port, agent } = await serve((req, res) => {
    const what = decodeURIComponent(req.url!.slice(1));
    const c = cases[what]!;
    const got = directSocket(res, c) !== null;
    if (got !== (c.direct && !deno)) wrong.push(`${what}: ${got}`);
    res.writeHead(200, { "content-length": 0 }).end();
  });
  for (const [what, c] of Object.entries(cases)) assert.equal((await fetchOne(port, agent, c.method, `/${encodeURIComponent(what)}`)).status, 200);
  assert.deepEqual(wrong, []);
});

test("relayDirect(): a large body reaches a slow client whole after its head, and the connection carries the next request", skipWhen(deno && "Deno's ServerResponse does not write through res.socket (directSocket() is null there)", "relayDirect"), async () => {
  const big = Buffer.alloc(4 << 20);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  let direct = 0;
  const { port, agent } = await serve((req, res) => {
    const body = req.url === "/big" ? big : Buffer.from("second");
    res.writeHead(200, { "content-length": body.length, "x-a": "1" });
    const socket = directSocket(res, { status: 200, rawHeaders: ["content-length", String(body.length)] });
    if (!socket) return void res.end(body);
    direct++;
    // 16 KiB pieces, as a TLS socket hands them over.
    const pieces = Array.from({ length: Math.ceil(body.length / 16384) }, (_, i) => body.subarray(i * 16384, (i + 1) * 16384));
    relayDirect(res, socket, Readable.from(pieces));
  });
  const first = await fetchOne(port, agent, "GET", "/big", true);
  assert.equal(first.status, 200);
  assert.ok(first.body.equals(big), "the body arrived whole and in order");
  const second = await fetchOne(port, agent, "GET", "/second");
  assert.deepEqual([second.status, second.body.toString(), second.reused], [200, "second", true]);
  assert.equal(direct, 2);
});
