// Test-only helpers for the firewall tests (not imported by the daemon): a fake upstream
// (HTTP or HTTPS with its own test CA) that records what reaches it and echoes WebSocket
// frames, and a small HTTP/1.1 client that speaks over any socket so a test controls
// exactly which connection (tunnel, TLS session) each request uses.
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import type { FirewallPolicy } from "../../lib/sidecar-config.ts";

export interface Recorded {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface FakeUpstream {
  server: http.Server;
  port: number;
  requests: Recorded[];
  /** Payloads of the WebSocket frames that reached the upstream, in order. */
  wsFrames: string[];
  /** TCP connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** A WebSocket frame (text unless `opcode` says otherwise); clients must mask theirs. */
export function wsFrame(text: string | Buffer, mask: boolean, o: { fin?: boolean; opcode?: number; rsv1?: boolean } = {}): Buffer {
  const payload = Buffer.from(text);
  const key = mask ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0);
  const body = mask ? payload.map((b, i) => b ^ key[i % 4]!) : payload;
  const b0 = ((o.fin ?? true) ? 0x80 : 0) | (o.rsv1 ? 0x40 : 0) | (o.opcode ?? 1);
  const m = mask ? 0x80 : 0;
  let len: Buffer;
  if (payload.length < 126) len = Buffer.from([b0, m | payload.length]);
  else if (payload.length < 65536) {
    len = Buffer.from([b0, m | 126, 0, 0]);
    len.writeUInt16BE(payload.length, 2);
  } else {
    len = Buffer.from([b0, m | 127, 0, 0, 0, 0, 0, 0, 0, 0]);
    len.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  return Buffer.concat([len, key, body]);
}

export interface WsFrame {
  opcode: number;
  payload: Buffer;
  /** Bytes the frame took. */
  size: number;
}

/** Decode one frame (masked or not, any length); null until it is complete. */
export function parseWsFrame(buf: Buffer): WsFrame | null {
  if (buf.length < 2) return null;
  const masked = (buf[1]! & 0x80) !== 0;
  let len = buf[1]! & 0x7f;
  let at = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    len = Number(buf.readBigUInt64BE(2));
    at = 10;
  }
  const start = at + (masked ? 4 : 0);
  if (buf.length < start + len) return null;
  const data = buf.subarray(start, start + len);
  return { opcode: buf[0]! & 0x0f, payload: Buffer.from(masked ? data.map((b, i) => b ^ buf[at + (i % 4)]!) : data), size: start + len };
}

export async function startUpstream(opts: { tls?: { certPem: string; keyPem: string } } = {}): Promise<FakeUpstream> {
  const requests: Recorded[] = [];
  const wsFrames: string[] = [];
  let connections = 0;
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString("latin1") });
      const body = JSON.stringify({ ok: true, path: req.url });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    });
  };
  const server = opts.tls ? https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, handler) : http.createServer(handler);
  const sockets = new Set<net.Socket>();
  server.on(opts.tls ? "secureConnection" : "connection", () => connections++);
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket) => {
    requests.push({ method: req.method!, url: req.url!, headers: req.headers, body: "" });
    const accept = createHash("sha1").update(`${req.headers["sec-websocket-key"]}${WS_GUID}`).digest("base64");
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    let buf = Buffer.alloc(0);
    socket.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (let f = parseWsFrame(buf); f; f = parseWsFrame(buf)) {
        buf = buf.subarray(f.size);
        wsFrames.push(f.payload.toString());
        if (f.opcode === 1) socket.write(wsFrame(`echo: ${f.payload.toString()}`, false));
      }
    });
    socket.on("error", () => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    requests,
    wsFrames,
    connections: () => connections,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

export interface Response {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sequential HTTP/1.1 over one socket: a test sends several requests on the same
 * connection to prove keep-alive. Understands content-length and chunked responses.
 */
export class RawHttp {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private ended = false;

  constructor(readonly socket: net.Socket) {
    socket.on("data", (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.waiter?.();
    });
    const end = () => {
      this.ended = true;
      this.waiter?.();
    };
    socket.on("end", end);
    socket.on("close", end);
    socket.on("error", end);
  }

  private async need(pred: () => number): Promise<number> {
    for (;;) {
      const n = pred();
      if (n >= 0) return n;
      if (this.ended) throw new Error(`connection closed; got ${JSON.stringify(this.buf.toString("latin1").slice(0, 200))}`);
      await new Promise<void>((r) => (this.waiter = r));
      this.waiter = null;
    }
  }

  private async take(n: number): Promise<Buffer> {
    await this.need(() => (this.buf.length >= n ? n : -1));
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  async readResponse(): Promise<Response> {
    const end = await this.need(() => this.buf.indexOf("\r\n\r\n"));
    const head = (await this.take(end + 4)).toString("latin1").split("\r\n");
    const status = Number(head[0]!.split(" ")[1]);
    const headers: Record<string, string> = {};
    for (const line of head.slice(1, -2)) {
      const i = line.indexOf(":");
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    let body = Buffer.alloc(0);
    if (headers["content-length"] !== undefined) body = Buffer.from(await this.take(Number(headers["content-length"])));
    else if (headers["transfer-encoding"] === "chunked") {
      for (;;) {
        const eol = await this.need(() => this.buf.indexOf("\r\n"));
        const size = parseInt((await this.take(eol + 2)).toString("latin1"), 16);
        const chunk = Buffer.from(await this.take(size + 2));
        if (size === 0) break;
        body = Buffer.concat([body, chunk.subarray(0, size)]);
      }
    }
    return { status, headers, body: body.toString("utf8") };
  }

  async request(method: string, target: string, headers: Record<string, string>, body?: string | Buffer): Promise<Response> {
    const b = body === undefined ? undefined : Buffer.from(body);
    let head = `${method} ${target} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries({ ...headers, ...(b ? { "content-length": String(b.length) } : {}) })) head += `${k}: ${v}\r\n`;
    // One write: head and body in separate writes would meet Nagle and delayed ACKs.
    this.socket.write(b ? Buffer.concat([Buffer.from(`${head}\r\n`), b]) : `${head}\r\n`);
    return this.readResponse();
  }

  /** Bytes that arrived after the last response (WebSocket frames). */
  /** The payload of the next WebSocket frame, as text. */
  async readFrame(): Promise<string> {
    return (await this.readWsFrame()).payload.toString();
  }

  async readWsFrame(): Promise<WsFrame> {
    let f: WsFrame | null = null;
    await this.need(() => ((f = parseWsFrame(this.buf)) === null ? -1 : 0));
    this.buf = this.buf.subarray(f!.size);
    return f!;
  }
}

/** Open a CONNECT tunnel through the proxy; resolves to the tunnel or to the refusal. */
export async function connectTunnel(proxyPort: number, target: string): Promise<{ socket: net.Socket } | { refused: Response }> {
  const socket = net.connect(proxyPort, "127.0.0.1");
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const raw = new RawHttp(socket);
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  // A 200 to CONNECT has no body; anything else is an ordinary response.
  const res = await raw.readResponse();
  if (res.status !== 200) {
    socket.destroy();
    return { refused: res };
  }
  socket.removeAllListeners("data").removeAllListeners("end").removeAllListeners("close").removeAllListeners("error");
  return { socket };
}

/** TLS over an open tunnel, trusting only `ca`. */
export function tlsOver(socket: net.Socket, servername: string, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ socket, servername, ca, ALPNProtocols: ["http/1.1"] }, () => resolve(s));
    s.once("error", reject);
  });
}

/** An HTTPS client session through the proxy: CONNECT, TLS trusting `ca`, then requests. */
export async function httpsVia(proxyPort: number, host: string, ca: string, port = 443): Promise<RawHttp> {
  const t = await connectTunnel(proxyPort, `${host}:${port}`);
  if (!("socket" in t)) throw new Error(`CONNECT ${host} refused: ${t.refused.status} ${t.refused.body}`);
  return new RawHttp(await tlsOver(t.socket, host, ca));
}

/** A plain connection to the proxy for absolute-form requests. */
export async function plainVia(proxyPort: number): Promise<RawHttp> {
  const socket = net.connect(proxyPort, "127.0.0.1");
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  return new RawHttp(socket);
}

export function policyOf(hosts: (string | { host: string; tlsPassthrough: boolean; ports?: number[] })[], dlp: Partial<FirewallPolicy["dlp"]> = {}): FirewallPolicy {
  return {
    version: 1,
    slug: "test-bottle",
    hosts: hosts.map((h) => (typeof h === "string" ? { host: h, tlsPassthrough: false, routed: false } : { ...h, routed: false })),
    dlp: { disabled: dlp.disabled ?? [], sensitive: dlp.sensitive ?? [] },
  };
}
