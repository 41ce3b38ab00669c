// Test helper: HTTP/1.1 spoken by hand over any socket, so a test controls exactly what
// goes on the wire and which connection each request uses (a plain one to a proxy, a
// CONNECT tunnel, a TLS session inside it): keep-alive across requests, absolute-form
// proxy requests, CONNECT, Upgrade and the WebSocket frames after it, the same way under
// node and deno.
import { Buffer } from "node:buffer";
import net from "node:net";
import tls from "node:tls";
import { parseWsFrame, type WsFrame } from "./ws-frame.mjs";

export interface RawResponse {
  status: number;
  /** The whole first line, reason phrase included. */
  statusLine: string;
  headers: Record<string, string>;
  body: string;
}

/** How long one read waits for bytes before it fails, naming what it waited for. */
const READ_TIMEOUT_MS = 10_000;

/** Sequential requests on one socket; understands content-length and chunked responses. */
export class RawHttp {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  /** The peer ended or the socket failed: no more bytes will arrive. */
  closed = false;

  constructor(readonly socket: net.Socket) {
    socket.on("data", (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake?.();
    });
    const end = () => {
      this.closed = true;
      this.wake?.();
    };
    socket.on("end", end);
    socket.on("close", end);
    socket.on("error", end);
  }

  private async until(ready: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + READ_TIMEOUT_MS;
    while (!ready()) {
      const got = () => JSON.stringify(this.buf.subarray(0, 500).toString("latin1"));
      if (this.closed) throw new Error(`connection closed while waiting for ${what}; got ${got()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${got()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Exactly n bytes (tunnels, upgraded connections). */
  async readBytes(n: number): Promise<Buffer> {
    await this.until(() => this.buf.length >= n, `${n} bytes`);
    return this.take(n);
  }

  /** One response: status line and headers, then a body framed by content-length or chunks. */
  async readResponse(): Promise<RawResponse> {
    await this.until(() => this.buf.includes("\r\n\r\n"), "response head");
    const [statusLine, ...lines] = this.take(this.buf.indexOf("\r\n\r\n") + 4).toString("latin1").slice(0, -4).split("\r\n");
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine!)?.[1]);
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(":");
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let body: Buffer = Buffer.alloc(0);
    if (status === 101 || (status === 200 && headers["content-length"] === undefined && headers["transfer-encoding"] === undefined)) {
      // upgraded, or a CONNECT tunnel: no body, the rest of the stream is the tunnel's
    } else if (status === 204 || status === 304) {
      // never a body (RFC 9112 6.3), whatever the headers say
    } else if (headers["content-length"] !== undefined) {
      body = await this.readBytes(Number(headers["content-length"]));
    } else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
      const parts: Buffer[] = [];
      for (;;) {
        await this.until(() => this.buf.includes("\r\n"), "chunk size");
        const size = parseInt(this.take(this.buf.indexOf("\r\n") + 2).toString("latin1"), 16);
        const chunk = await this.readBytes(size + 2);
        if (size === 0) break;
        parts.push(chunk.subarray(0, size));
      }
      body = Buffer.concat(parts);
    } else {
      await this.until(() => this.closed, "end of body").catch(() => {});
      body = this.take(this.buf.length);
    }
    return { status, statusLine: statusLine!, headers, body: body.toString("utf8") };
  }

  /** Send a request (content-length added when there is a body) and read its response. */
  async request(method: string, target: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<RawResponse> {
    const b = body === undefined ? undefined : Buffer.from(body);
    let head = `${method} ${target} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries({ ...headers, ...(b ? { "content-length": String(b.length) } : {}) })) head += `${k}: ${v}\r\n`;
    // One write: head and body in separate writes would meet Nagle and delayed ACKs.
    this.socket.write(b ? Buffer.concat([Buffer.from(`${head}\r\n`), b]) : `${head}\r\n`);
    return this.readResponse();
  }

  /** An absolute-form request, as a client sends it to a proxy, with Host taken from the URL. */
  proxyRequest(method: string, url: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<RawResponse> {
    return this.request(method, url, { Host: new URL(url).host, ...headers }, body);
  }

  /** The next WebSocket frame (after a 101). */
  async readWsFrame(): Promise<WsFrame> {
    await this.until(() => parseWsFrame(this.buf) !== null, "a WebSocket frame");
    const f = parseWsFrame(this.buf)!;
    this.take(f.size);
    return f;
  }

  /** The payload of the next WebSocket frame, as text. */
  async readFrame(): Promise<string> {
    return (await this.readWsFrame()).payload.toString();
  }
}

function dial(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** A plain connection to the proxy on 127.0.0.1:port, for absolute-form requests. */
export async function plainVia(proxyPort: number): Promise<RawHttp> {
  return new RawHttp(await dial(proxyPort));
}

/** One absolute-form request on a connection of its own to the proxy, closed after the answer. */
export async function proxyRequestOnce(proxyPort: number, method: string, url: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const conn = await plainVia(proxyPort);
  try {
    return await conn.proxyRequest(method, url, headers);
  } finally {
    conn.socket.destroy();
  }
}

/** Open a CONNECT tunnel through the proxy; resolves to the tunnel or to the refusal. */
export async function connectTunnel(proxyPort: number, target: string, headers: Record<string, string> = {}): Promise<{ socket: net.Socket } | { refused: RawResponse }> {
  const socket = await dial(proxyPort);
  const res = await new RawHttp(socket).request("CONNECT", target, { Host: target, ...headers });
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
