// The name lookup the bundle dials upstreams with (egress, or the firewall when it runs
// without egress): what DNS says, minus the addresses no upstream has. A host the bottle
// allows is named by someone else's DNS, which may answer 127.0.0.1 (the bundle's own
// loopback, where egress, git-gate and supervise listen), 169.254.169.254 (a cloud machine's
// metadata service, its credentials a GET away) or another link-local address. Those are
// never dialed. An IP the bottle names itself, or a --resolve mapping, is no lookup and
// passes: that is the operator's own word. Private ranges (10/8, 172.16/12, 192.168/16)
// stay reachable: an internal git or package server is a declared host like any other.
import dns from "node:dns";
import net from "node:net";

export type LookupAll = (hostname: string, options: dns.LookupAllOptions, callback: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void) => void;

/** Why the bundle never dials `address`, or null when it may. */
export function unroutable(address: string): string | null {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  const v4 = mapped ?? (net.isIPv4(address) ? address : null);
  if (v4) {
    const [a, b] = v4.split(".").map(Number) as [number, number];
    if (a === 127) return "loopback";
    if (a === 0) return "unspecified";
    if (a === 169 && b === 254) return "link-local (a cloud metadata service lives there)";
    if (a >= 224) return "multicast or reserved";
    return null;
  }
  const v6 = address.toLowerCase();
  if (v6 === "::1") return "loopback";
  if (v6 === "::") return "unspecified";
  if (/^fe[89ab]/.test(v6)) return "link-local";
  if (v6.startsWith("ff")) return "multicast";
  return null;
}

/**
 * A `lookup` for net.connect and http(s).request: `base`'s answer without the addresses
 * unroutable() refuses, or an EUNROUTABLE error naming them when nothing is left.
 */
export function routableLookup(who: string, base: LookupAll = dns.lookup as unknown as LookupAll): net.LookupFunction {
  return ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    base(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err);
      const usable = addresses.filter((a) => unroutable(a.address) === null);
      if (usable.length === 0) {
        const why = addresses.map((a) => `${a.address} (${unroutable(a.address)})`).join(", ");
        const e: NodeJS.ErrnoException = new Error(`${hostname} resolves only to ${why}, which ${who} never dials`);
        e.code = "EUNROUTABLE";
        return callback(e);
      }
      if (options.all) return callback(null, usable);
      callback(null, usable[0]!.address, usable[0]!.family);
    });
  }) as net.LookupFunction;
}
