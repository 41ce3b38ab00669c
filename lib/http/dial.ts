// A TCP connection that gives up when the far side never answers the SYN: the firewall's
// dials (upstreams, its next hop's CONNECT) and the hop client's, one connect rule.
import net from "node:net";

export const CONNECT_TIMEOUT_MS = 10_000;

/** Connect to host:port (through `lookup` when given); rejects with ETIMEDOUT after CONNECT_TIMEOUT_MS. */
export function tcpDial(to: { host: string; port: number }, o: { lookup?: net.LookupFunction; noDelay?: boolean } = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: to.host, port: to.port, ...(o.lookup ? { lookup: o.lookup } : {}), ...(o.noDelay ? { noDelay: true } : {}) });
    s.setTimeout(CONNECT_TIMEOUT_MS, () => s.destroy(Object.assign(new Error(`connect timed out after ${CONNECT_TIMEOUT_MS / 1000}s`), { code: "ETIMEDOUT" })));
    s.once("connect", () => {
      s.setTimeout(0);
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}
