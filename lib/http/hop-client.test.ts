// The next-hop client against a real server on loopback that answers with scripted bytes:
// every framing a response can have, keep-alive reuse, and the malformed or hostile answers
// an untrusted peer could send, each of which must fail the request (or, for stray bytes,
// cost the connection) rather than be relayed as something it is not.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { after, test } from "node:test";
import { createHopClient, type HopResponse } from "./hop-client.ts";
import { MAX_HEADER_BYTES, RELAY_HIGH_WATER_MARK } from "./limits.ts";

interface Script {
  /** What the server writes back for the request (pieces written with a pause between). */
  answer: string | Buffer | (string | Buffer)[];
  /** End the connection after answering. */
  close?: boolean;
}

/** A server that answers each request with the next script; it records request heads and counts connections. */
async function scripted(scripts: Script[]) {
  const heads: string[] = [];
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    let buf = "";
    s.on("data", async (c: Buffer) => {
      buf += c.toString("latin1");
      for (let end = buf.indexOf("\r\n\r\n"); end !== -1; end = buf.indexOf("\r\n\r\n")) {
        const head = buf.slice(0, end);
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        heads.push(head);
        buf = buf.slice(end + 4 + length);
        const script = scripts.shift();
        if (!script) return void s.destroy();
        const pieces = Array.isArray(script.answer) ? script.answer : [script.answer];
        for (const p of pieces) {
          s.write(p);
          if (pieces.length > 1) await new Promise((r) => setTimeout(r, 5));
        }
        if (script.close) s.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const client = createHopClient({ host: "127.0.0.1", port });
  after(() => {
    client.close();
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { client, heads, connections: () => connections };
}

interface Outcome {
  status?: number;
  rawHeaders?: string[];
  body?: string;
  error?: NodeJS.ErrnoException;
  reused: boolean;
}

/** Send one request and read its whole answer, or how it failed. */
function exchange(client: ReturnType<typeof createHopClient>, method = "GET", body?: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = client.request({ method, target: "https://api.test/x", headers: { host: "api.test" }, body });
    req.on("error", (error) => resolve({ error, reused: req.reusedSocket }));
    req.on("response", (r: HopResponse) => {
      const chunks: Buffer[] = [];
      r.body.on("data", (c: Buffer) => chunks.push(c));
      r.body.on("end", () => resolve({ status: r.status, rawHeaders: r.rawHeaders, body: Buffer.concat(chunks).toString("latin1"), reused: req.reusedSocket }));
      r.body.on("error", (error) => resolve({ status: r.status, error, reused: req.reusedSocket }));
    });
  });
}

const ok = (body: string, extra = "") => `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n${extra}\r\n${body}`;

test("Content-Length answers over one keep-alive connection; the request goes out in absolute form with its body and framing", async () => {
  const s = await scripted([{ answer: ok("hello") }, { answer: ["HTTP/1.1 200 OK\r\ncontent-le", "ngth: 6\r\nx-a: 1\r\nX-A: 2\r\n\r\nwor", "ld!"] }]);
  const first = await exchange(s.client, "POST", Buffer.from("payload"));
  assert.deepEqual([first.status, first.body, first.reused], [200, "hello", false]);
  const second = await exchange(s.client);
  assert.deepEqual([second.status, second.body, second.reused], [200, "world!", true]);
  assert.deepEqual(second.rawHeaders, ["content-length", "6", "x-a", "1", "X-A", "2"]);
  assert.equal(s.connections(), 1);
  assert.match(s.heads[0]!, /^POST https:\/\/api\.test\/x HTTP\/1\.1\r\nhost: api\.test\r\nconnection: keep-alive\r\ncontent-length: 7$/);
});

test("chunked answers are de-framed (extensions and trailers read past), in pieces or whole, and keep the connection", async () => {
  const chunked = "5;name=value\r\nhello\r\n1A\r\n abcdefghijklmnopqrstuvwxy\r\n0\r\nx-trailer: t\r\n\r\n";
  const head = "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n";
  const s = await scripted([{ answer: head + chunked }, { answer: [head, ...chunked.split(/(?<=\r\n)|(?<=l)/)] }]);
  for (const reused of [false, true]) {
    const r = await exchange(s.client);
    assert.deepEqual([r.status, r.body, r.reused], [200, "hello abcdefghijklmnopqrstuvwxy", reused]);
  }
  assert.equal(s.connections(), 1);
});

test("an answer without length runs to the close, and that connection is not used again", async () => {
  const s = await scripted([{ answer: ["HTTP/1.1 200 OK\r\n\r\nuntil", " the end"], close: true }, { answer: ok("next") }]);
  assert.equal((await exchange(s.client)).body, "until the end");
  const next = await exchange(s.client);
  assert.deepEqual([next.body, next.reused], ["next", false]);
  assert.equal(s.connections(), 2);
});

test("no body after HEAD, 204 and 304 whatever their headers say, and 1xx heads are read past", async () => {
  const s = await scripted([
    { answer: "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n" },
    { answer: "HTTP/1.1 204 No Content\r\ncontent-length: 10\r\n\r\n" },
    { answer: "HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n" },
    { answer: ["HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n", ok("final")] },
  ]);
  const head = await exchange(s.client, "HEAD");
  assert.deepEqual([head.status, head.body], [200, ""]);
  assert.deepEqual([(await exchange(s.client)).status, (await exchange(s.client)).status], [204, 304]);
  const final = await exchange(s.client);
  assert.deepEqual([final.status, final.body, final.reused], [200, "final", true]);
  assert.equal(s.connections(), 1);
});

test("Connection: close, an HTTP/1.0 answer, and bytes past the answer's end each cost the connection", async () => {
  const s = await scripted([
    { answer: ok("a", "connection: close\r\n") },
    { answer: "HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nb" },
    { answer: `${ok("c")}HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nsmuggled` },
    { answer: ok("d") },
  ]);
  for (const body of ["a", "b", "c", "d"]) {
    const r = await exchange(s.client);
    assert.deepEqual([r.body, r.reused], [body, false], body);
  }
  assert.equal(s.connections(), 4);
});

test("a body larger than a socket read arrives whole to a slow reader", async () => {
  const big = Buffer.alloc(3 << 20, "z");
  const s = await scripted([{ answer: [`HTTP/1.1 200 OK\r\ncontent-length: ${big.length}\r\n\r\n`, big] }]);
  const got = await new Promise<number>((resolve, reject) => {
    const req = s.client.request({ method: "GET", target: "http://a.test/", headers: {} });
    req.on("error", reject);
    req.on("response", (r: HopResponse) => {
      let n = 0;
      r.body.on("data", (c: Buffer) => {
        n += c.length;
        r.body.pause();
        setTimeout(() => r.body.resume(), 1);
      });
      r.body.on("end", () => resolve(n));
    });
  });
  assert.equal(got, big.length);
});

test("an answer's body not read yet takes up to RELAY_HIGH_WATER_MARK before its connection is held back, and no more than a read past it", async () => {
  const big = Buffer.alloc(1 << 20, "y");
  const s = await scripted([{ answer: [`HTTP/1.1 200 OK\r\ncontent-length: ${big.length}\r\n\r\n`, big] }]);
  const r = await new Promise<HopResponse>((resolve, reject) => {
    const req = s.client.request({ method: "GET", target: "http://a.test/", headers: {} });
    req.on("error", reject);
    req.on("response", resolve);
  });
  // Nobody reads: what waits is the window (four TLS records, not node's one), then the socket is paused.
  for (let i = 0; i < 100 && r.body.readableLength < RELAY_HIGH_WATER_MARK; i++) await new Promise((d) => setTimeout(d, 10));
  await new Promise((d) => setTimeout(d, 50));
  assert.equal(r.body.readableHighWaterMark, RELAY_HIGH_WATER_MARK);
  assert.ok(r.body.readableLength >= RELAY_HIGH_WATER_MARK, `held ${r.body.readableLength}`);
  assert.ok(r.body.readableLength < 3 * RELAY_HIGH_WATER_MARK, `held ${r.body.readableLength}: backpressure did not stop the reads`);
  let n = 0;
  r.body.on("data", (c: Buffer) => void (n += c.length));
  await new Promise((d) => r.body.on("end", d));
  assert.equal(n, big.length);
});

const bad: [string, string | string[], RegExp][] = [
  ["a head with no end", `HTTP/1.1 200 OK\r\nx-big: ${"a".repeat(MAX_HEADER_BYTES)}`, /response head larger than 65536 bytes/],
  ["a malformed status line", "HTTP/1.1 20 OK\r\ncontent-length: 0\r\n\r\n", /malformed status line/],
  ["a status line of another protocol", "ICY 200 OK\r\n\r\n", /malformed status line/],
  ["a folded header", "HTTP/1.1 200 OK\r\nx-a: 1\r\n continued\r\ncontent-length: 0\r\n\r\n", /malformed header line/],
  ["a bare LF inside a header", "HTTP/1.1 200 OK\r\nx-a: 1\ncontent-length: 5\r\n\r\nhello", /malformed header line/],
  ["a control byte in a value", "HTTP/1.1 200 OK\r\nx-a: 1\x00\r\ncontent-length: 0\r\n\r\n", /malformed header line/],
  ["a space before the colon", "HTTP/1.1 200 OK\r\ncontent-length : 5\r\n\r\nhello", /malformed header line/],
  ["Content-Length and Transfer-Encoding together", "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", /both Transfer-Encoding and Content-Length/],
  ["two Content-Lengths", "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\nhello", /more than one Content-Length/],
  ["a Content-Length list", "HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\nhello", /invalid content-length/],
  ["a negative Content-Length", "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", /invalid content-length/],
  ["a Content-Length past 2^53", "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999\r\n\r\n", /invalid content-length/],
  ["a transfer-coding other than chunked", "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n", /unsupported transfer-encoding/],
  ["a 101 to a plain request", "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n", /switched protocols/],
];
for (const [what, answer, reason] of bad) {
  test(`refused before any answer is relayed: ${what}`, async () => {
    const s = await scripted([{ answer }, { answer: ok("fine") }]);
    const r = await exchange(s.client);
    assert.equal(r.status, undefined, "no answer may be handed on");
    assert.equal(r.error?.code, "HPE_INVALID");
    assert.match(r.error!.message, reason);
    assert.match(r.error!.message, /^the upstream /, "a client made without a peer name blames the upstream");
    assert.match(r.error!.message, /^the upstream (sent an? |switched )/, "the message does not read as a sentence");
    // The connection that carried it is not used again.
    const next = await exchange(s.client);
    assert.deepEqual([next.body, next.reused], ["fine", false]);
  });
}

const badBodies: [string, string, RegExp][] = [
  ["a chunk size that is not hex", "zz\r\nhello\r\n0\r\n\r\n", /invalid chunk size line/],
  ["a chunk size past 48 bits", "1000000000000\r\n", /invalid chunk size line/],
  ["a chunk size with a sign", "-5\r\nhello\r\n0\r\n\r\n", /invalid chunk size line/],
  ["a chunk longer than its size", "3\r\nhello\r\n0\r\n\r\n", /chunk data longer than its size/],
  ["a size line with a bare LF", "5\nhello\r\n0\r\n\r\n", /does not end in CRLF/],
  ["a size line with no end", `5;${"e".repeat(5000)}`, /chunk size line too long/],
  ["trailers with no end", `0\r\n${"x-t: 1\r\n".repeat(MAX_HEADER_BYTES / 8 + 1)}`, /chunked trailers too large/],
];
for (const [what, body, reason] of badBodies) {
  test(`a chunked body fails, connection and all: ${what}`, async () => {
    const s = await scripted([{ answer: `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${body}` }, { answer: ok("fine") }]);
    const r = await exchange(s.client);
    assert.equal(r.status, 200);
    assert.equal(r.error?.code, "HPE_INVALID");
    assert.match(r.error!.message, reason);
    const next = await exchange(s.client);
    assert.deepEqual([next.body, next.reused], ["fine", false]);
  });
}

test("a hop that hangs up: before the answer it is a socket hang up on a reused connection (retryable), mid-body an abort", async () => {
  const s = await scripted([{ answer: ok("one") }, { answer: "", close: true }, { answer: "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf", close: true }]);
  assert.equal((await exchange(s.client)).body, "one");
  const hungUp = await exchange(s.client);
  assert.deepEqual([hungUp.error?.code, hungUp.error?.message, hungUp.reused], ["ECONNRESET", "socket hang up", true]);
  const cut = await exchange(s.client);
  assert.deepEqual([cut.status, cut.error?.code, cut.error?.message], [200, "ECONNRESET", "aborted"]);
});

test("a header value or request line that would break out of its line is refused before anything is sent", async () => {
  const s = await scripted([]);
  assert.throws(() => s.client.request({ method: "GET", target: "http://a.test/", headers: { "x-a": "1\r\nx-injected: 1" } }), { code: "ERR_INVALID_CHAR" });
  assert.throws(() => s.client.request({ method: "GET", target: "http://a.test/ HTTP/1.1\r\nx: y", headers: {} }), { code: "ERR_INVALID_CHAR" });
  assert.throws(() => s.client.request({ method: "GET", target: "/", headers: { "bad name": "1" } }), { code: "ERR_INVALID_HTTP_TOKEN" });
  assert.equal(s.connections(), 0);
});
