// Test fixture: upstreams that are slow to answer, on 127.0.0.1, in the test's process
// (egress's and the firewall's deadline tests).
//   quiet: accepts and reads, answers only requests whose path starts with /answer (a
//     short 200, keeping the connection), and holds every other one without a word;
//     what arrived and whether each connection has closed are there to check.
//   slow: answers each request's head after 200 ms, then trickles its body in
//     SLOW_BODY_CHUNKS chunks 500 ms apart; over TLS when given a certificate.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import http from "node:http";
import https from "node:https";
import net from "node:net";

export interface QuietUpstream {
  port: number;
  /** Request lines as they arrived ("GET /hold"), with the connection (0, 1, ...) each came on. */
  arrived: { line: string; conn: number }[];
  /** The connection a request line arrived on; asserts it arrived exactly once. */
  arrivedOnce(line: string): number;
  /** Connections accepted so far. */
  connections(): number;
  /** Resolves once connection `conn` is closed; rejects, naming it, after `ms`. */
  closed(conn: number, ms?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startQuietUpstream(): Promise<QuietUpstream> {
  const arrived: { line: string; conn: number }[] = [];
  const sockets: net.Socket[] = [];
  const closes: Promise<void>[] = [];
  const server = net.createServer((s) => {
    const conn = sockets.push(s) - 1;
    closes.push(new Promise((r) => s.once("close", () => r())));
    s.on("error", () => {});
    let buf = Buffer.alloc(0);
    s.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (let end = buf.indexOf("\r\n\r\n"); end !== -1; end = buf.indexOf("\r\n\r\n")) {
        const line = buf.subarray(0, buf.indexOf("\r\n")).toString("latin1").replace(/ HTTP\/1\.[01]$/, "");
        buf = buf.subarray(end + 4);
        arrived.push({ line, conn });
        if (/^[A-Z]+ \/answer/.test(line)) s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    arrived,
    arrivedOnce(line) {
      const seen = arrived.filter((a) => a.line === line);
      assert.equal(seen.length, 1, `${line} arrived ${seen.length} times: ${JSON.stringify(arrived)}`);
      return seen[0]!.conn;
    },
    connections: () => sockets.length,
    closed(conn, ms = 10_000) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`upstream connection ${conn} still open after ${ms} ms`)), ms);
      });
      const gone = closes[conn] ?? Promise.reject(new Error(`no upstream connection ${conn} (${sockets.length} accepted)`));
      return Promise.race([gone, late]).finally(() => clearTimeout(timer));
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

export const SLOW_BODY_CHUNKS = 6;

export async function startSlowUpstream(tls?: { certPem: string; keyPem: string }): Promise<{ port: number; close(): Promise<void> }> {
  const answer = (_req: http.IncomingMessage, res: http.ServerResponse) => {
    const timers: ReturnType<typeof setTimeout>[] = [];
    res.on("close", () => timers.forEach(clearTimeout));
    timers.push(
      setTimeout(() => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.flushHeaders();
        for (let i = 0; i < SLOW_BODY_CHUNKS; i++) timers.push(setTimeout(() => (i === SLOW_BODY_CHUNKS - 1 ? res.end(`chunk-${i};`) : res.write(`chunk-${i};`)), 500 * (i + 1)));
      }, 200),
    );
  };
  const server = tls ? https.createServer({ cert: tls.certPem, key: tls.keyPem }, answer) : http.createServer(answer);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close() {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
