// Test helper: an HTTP server that stages, on cue, the race a server's keep-alive idle
// timeout makes. It answers the first request on each connection and keeps the connection
// open, then closes it, unanswered, the moment a second request arrives on it: what a
// proxy sees when the server closed an idle pooled connection just as the proxy reused it.
// closeIdle() stages the calmer case: the server closes its idle connections between requests.
import { Buffer } from "node:buffer";
import net from "node:net";
import tls from "node:tls";

interface IdleClosingServer {
  port: number;
  /** Connections accepted so far. */
  connections(): number;
  /** Every request line that arrived ("GET /a"), answered or not, in order. */
  arrived: string[];
  /** The head of each of those requests, lower-cased. */
  heads: string[];
  /** Close every open connection, as an idle timeout would; resolves once all are closed. */
  closeIdle(): Promise<void>;
  close(): Promise<void>;
}

/** Plain HTTP, or HTTPS with `tls`'s certificate. */
export async function startIdleClosingServer(opts: { tls?: { certPem: string; keyPem: string } } = {}): Promise<IdleClosingServer> {
  const arrived: string[] = [];
  const heads: string[] = [];
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const onConnection = (socket: net.Socket) => {
    const n = ++connections;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let buf = Buffer.alloc(0);
    let answered = false;
    socket.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buf.subarray(0, end).toString("latin1");
      const line = head.slice(0, head.indexOf("\r\n")).split(" ").slice(0, 2).join(" ");
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (answered) {
        arrived.push(line);
        heads.push(head.toLowerCase());
        return void socket.destroy(); // closed under the request, as an idle timeout would
      }
      if (buf.length < end + 4 + length) return;
      arrived.push(line);
      heads.push(head.toLowerCase());
      answered = true;
      buf = Buffer.alloc(0);
      const body = `${line} answered on connection ${n}`;
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body}`);
    });
  };
  const server = opts.tls ? tls.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, onConnection) : net.createServer(onConnection);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    arrived,
    heads,
    closeIdle: () =>
      Promise.all(
        [...sockets].map((s) => {
          const closed = new Promise((r) => s.once("close", r));
          s.destroy();
          return closed;
        }),
      ).then(() => {}),
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
