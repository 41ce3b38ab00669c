// Keep-alive pools for a proxy that dials many upstreams itself (egress, and the firewall
// when it has no next hop): one hop client (hop-client.ts) per origin and address, each
// opening its connections through the same dial rules node's agents had from the proxy:
// the lookup it gives (lib/http/lookup.ts), the dial deadline, the TLS handshake within
// it, certificates checked against the name the agent asked for, and TLS sessions resumed
// as https.Agent resumes them.
import type { Buffer } from "node:buffer";
import type net from "node:net";
import type tls from "node:tls";
import { createHopClient, type HopClient } from "./hop-client.ts";
import { dialTlsWithin, dialWithin } from "./upstream-deadlines.ts";

export interface OriginTarget {
  /** "https://host[:port]", named in a dial's TIMEOUT. */
  origin: string;
  /** Where to connect (a --resolve mapping, or the origin's own host). */
  host: string;
  port: number;
  secure: boolean;
  /** SNI and the certificate's name; absent for an IP literal. */
  servername?: string;
}

interface OriginPoolsOptions {
  lookup?: net.LookupFunction;
  /** Whom TLS upstreams must be signed by (lib/tls/ciphers.ts clientContext), asked for at
   * the first TLS dial: the first SecureContext is costly (lib/tls/upstream-agents.ts). */
  secureContext: () => tls.SecureContext;
  /** A fresh connection's dial, the name lookup and the TLS handshake included. */
  connectMs: number;
  /** Name the origin in the errors of an answer it cannot parse (egress: its 502 says
   * nothing else of whom it means); otherwise the hop client's "the upstream" (the
   * firewall's 502 says "cannot reach HOST: " before it). */
  namePeer?: boolean;
  /** How many pools the table holds at most (MAX_POOLS; smaller in tests). */
  maxPools?: number;
}

export interface OriginPools {
  poolFor(t: OriginTarget): HopClient;
  /** How many pools the table holds. */
  size(): number;
  close(): void;
}

/**
 * Past this many pools, the ones with no idle connection are let go when another is made,
 * and when every one holds an idle connection, the pool used least recently (whose idle
 * connections have waited longest) is closed to make room: an agent calling on ever new
 * names (one wildcard's made-up subdomains) cannot grow the table, nor the connections it
 * keeps open, without end. A request under way on a pool let go finishes, and its
 * connection closes.
 */
const MAX_POOLS = 1024;

export function createOriginPools(o: OriginPoolsOptions): OriginPools {
  const pools = new Map<string, HopClient>();

  function create(t: OriginTarget): HopClient {
    const to = { host: t.host, port: t.port };
    const peer = o.namePeer ? t.origin : undefined;
    if (!t.secure) return createHopClient(to, { dial: () => dialWithin(to, t.origin, o.connectMs, o.lookup).then(noDelay), peer });
    let session: Buffer | undefined;
    const dial = () =>
      dialTlsWithin(to, t.origin, o.connectMs, {
        servername: t.servername,
        secureContext: o.secureContext(),
        session,
        lookup: o.lookup,
        onSession: (s) => void (session = s),
      }).catch((e: Error) => {
        session = undefined; // as https.Agent: a failed dial does not offer that session again
        throw e;
      });
    return createHopClient(to, { dial, peer });
  }

  const maxPools = o.maxPools ?? MAX_POOLS;

  function letGo(key: string, pool: HopClient): void {
    pool.close();
    pools.delete(key);
  }

  return {
    poolFor(t) {
      const key = `${t.origin}\0${t.host}\0${t.port}`;
      let pool = pools.get(key);
      if (pool) {
        // Most recently used last: the table's first pool is the one used least recently.
        pools.delete(key);
        pools.set(key, pool);
        return pool;
      }
      if (pools.size >= maxPools) {
        for (const [k, p] of pools) if (p.idle() === 0) letGo(k, p);
        // Every pool holds an idle connection: the least recently used makes room.
        if (pools.size >= maxPools) {
          const [k, p] = pools.entries().next().value!;
          letGo(k, p);
        }
      }
      pools.set(key, (pool = create(t)));
      return pool;
    },
    size: () => pools.size,
    close() {
      for (const p of pools.values()) p.close();
      pools.clear();
    },
  };
}

function noDelay(s: net.Socket): net.Socket {
  return s.setNoDelay(true);
}
