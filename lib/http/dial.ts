// A TCP connection that gives up when the far side never answers the SYN: the firewall's
// dials (upstreams, its next hop's CONNECT), the hop client's and egress's, one connect rule
// (upstream-deadlines.ts names the upstream in the error it fails with).
import net from "node:net";
import tls from "node:tls";

const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Call `late` unless `s` is connected within `ms`: a dial's deadline, the name lookup
 * included. A TLS socket counts as connected once its handshake is done (a server that
 * accepts and then says nothing holds a dial up as surely as one that never accepts); a
 * socket already connected (one taken from a keep-alive pool) gets no deadline at all.
 * `late` is told whether the TCP connection was made, so its message can say which step
 * did not happen.
 */
export function dialDeadline(s: net.Socket, ms: number, late: (step: "connect" | "tls handshake") => void): void {
  if (!s.connecting) return;
  const secure = s instanceof tls.TLSSocket;
  let tcpUp = false;
  const timer = setTimeout(() => late(tcpUp ? "tls handshake" : "connect"), ms);
  const stop = () => clearTimeout(timer);
  s.once("connect", () => {
    tcpUp = true;
    if (!secure) stop();
  });
  if (secure) s.once("secureConnect", stop);
  s.once("close", stop);
}

/**
 * Connect to host:port (through `lookup` when given); rejects after `timeoutMs`
 * (CONNECT_TIMEOUT_MS) with `late()`'s error, by default an ETIMEDOUT.
 */
export function tcpDial(to: { host: string; port: number }, o: { lookup?: net.LookupFunction; noDelay?: boolean; timeoutMs?: number; late?: () => Error } = {}): Promise<net.Socket> {
  const ms = o.timeoutMs ?? CONNECT_TIMEOUT_MS;
  const late = o.late ?? (() => Object.assign(new Error(`connect timed out after ${ms / 1000}s`), { code: "ETIMEDOUT" }));
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: to.host, port: to.port, ...(o.lookup ? { lookup: o.lookup } : {}), ...(o.noDelay ? { noDelay: true } : {}) });
    dialDeadline(s, ms, () => s.destroy(late()));
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}
