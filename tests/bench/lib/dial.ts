// How the benchmark client opens one keep-alive HTTPS session: straight to the upstream,
// or the way the agent does it, CONNECT through a proxy and then TLS inside the tunnel,
// trusting only the CA that proxy intercepts with.
import { Buffer } from "node:buffer";
import net from "node:net";
import tls from "node:tls";

export type Dialer = () => Promise<tls.TLSSocket>;

interface TlsTarget {
  /** SNI and the name the certificate must carry. */
  servername: string;
  /** The only CA trusted for this session (PEM). */
  ca: string;
}

function tcp(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: "127.0.0.1", noDelay: true });
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

function handshake(socket: net.Socket, context: tls.SecureContext, servername: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ socket, servername, secureContext: context, ALPNProtocols: ["http/1.1"] }, () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

/** TLS straight to a server on loopback. */
export function directDialer(port: number, t: TlsTarget): Dialer {
  const context = tls.createSecureContext({ ca: t.ca });
  return async () => handshake(await tcp(port), context, t.servername);
}

/** CONNECT `authority` through the proxy on `proxyPort`, then TLS inside the tunnel. */
export function proxyDialer(proxyPort: number, authority: string, t: TlsTarget): Dialer {
  const context = tls.createSecureContext({ ca: t.ca });
  return async () => {
    const s = await tcp(proxyPort);
    await connectTunnel(s, authority);
    return handshake(s, context, t.servername);
  };
}

function connectTunnel(s: net.Socket, authority: string): Promise<void> {
  s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const fail = (e: Error) => {
      s.off("data", onData);
      s.destroy();
      reject(e);
    };
    const onClose = () => fail(new Error(`proxy closed the connection before answering CONNECT ${authority}`));
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end === -1) return;
      s.off("data", onData).off("error", fail).off("close", onClose);
      const status = head.subarray(0, head.indexOf("\r\n")).toString("latin1");
      if (!/^HTTP\/1\.[01] 200\b/.test(status)) return fail(new Error(`proxy refused CONNECT ${authority}: ${head.toString("latin1").slice(0, 300)}`));
      // Nothing follows the 200 head: inside the tunnel the client speaks first (ClientHello).
      resolve();
    };
    s.on("data", onData).once("error", fail).once("close", onClose);
  });
}
