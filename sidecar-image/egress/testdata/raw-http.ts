// Test helper: one raw TCP connection speaking HTTP/1.1 by hand, so a test controls
// exactly what goes on the wire (absolute-form requests, CONNECT, Upgrade) and can keep
// one connection open across requests, the same way under node and deno.
import { Buffer } from "node:buffer";
import net from "node:net";

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export class RawConn {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (b: Buffer) => {
      this.buf = Buffer.concat([this.buf, b]);
      this.wake?.();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on("error", () => {});
  }

  static open(port: number, host = "127.0.0.1"): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new RawConn(s)));
      s.once("error", reject);
    });
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  close(): void {
    this.socket.destroy();
  }

  private async until(ready: () => boolean, what: string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ready()) {
      if (this.closed) throw new Error(`connection closed while waiting for ${what}; got ${JSON.stringify(this.buf.toString("latin1"))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.buf.toString("latin1"))}`);
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
    const head = this.take(this.buf.indexOf("\r\n\r\n") + 4).toString("latin1");
    const [statusLine, ...lines] = head.trimEnd().split("\r\n");
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine!)?.[1]);
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(":");
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let body: Buffer = Buffer.alloc(0);
    if (status === 101 || status === 200 && !headers["content-length"] && !headers["transfer-encoding"]) {
      // upgraded or a CONNECT tunnel: no body, the rest of the stream is the tunnel's
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
    return { status, headers, body: body.toString("utf8") };
  }

  /** Send a request and read its response. */
  async request(text: string): Promise<RawResponse> {
    this.send(text);
    return this.readResponse();
  }
}

/** An absolute-form request as the firewall sends it to egress. */
export function proxyRequest(method: string, url: string, headers: Record<string, string> = {}, body = ""): string {
  const u = new URL(url);
  const lines = [`${method} ${url} HTTP/1.1`, `Host: ${u.host}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (body || method === "POST") lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join("\r\n")}\r\n\r\n${body}`;
}
