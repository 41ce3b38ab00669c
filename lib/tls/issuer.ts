// On-the-fly leaf certificates for TLS interception. One key pair serves every leaf (as
// mitmproxy does): the per-host cost is then one ECDSA signature, and the resulting
// SecureContext is cached per host in a bounded LRU. Concurrent first requests for the
// same host share one mint because the cache holds the promise, not the result. The
// minting code (cert.ts, with @peculiar/x509) is imported at the first leaf, not when the
// issuer is made: the firewall listens sooner, and checkCa has checked its CA by then.
import { isIP } from "node:net";
import { createSecureContext, type SecureContext } from "node:tls";
import { BbError } from "../errors.ts";
import { PROXY_CIPHERS } from "./ciphers.ts";

interface LeafIssuer {
  /** A SecureContext presenting a leaf for `host` (DNS name or IP literal) signed by the CA. */
  contextFor(host: string): Promise<SecureContext>;
}

interface LeafIssuerOptions {
  caCertPem: string;
  caKeyPem: string;
  /** How many host contexts to keep (default 1000). */
  maxEntries?: number;
}

/** Lower-case, no trailing dot, no IPv6 brackets: one cache entry per real host. */
export function normalizeHost(host: string): string {
  let h = host.toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  return h.endsWith(".") ? h.slice(0, -1) : h;
}

const LABEL = /^[a-z0-9_-]{1,63}$/;

/**
 * Whether a normalized host is one a leaf may name: an IP literal, or a name DNS can carry
 * (at most 253 characters, labels of 1 to 63 letters, digits, "-" and "_"). A URL parser
 * lets through far more ("*", empty labels, 60 KiB names), and under a "*.suffix" rule the
 * agent picks the name: it must get neither a wildcard leaf nor one that costs a mint of
 * its size and a cache entry of it for each of a thousand names.
 */
export function isLeafHost(host: string): boolean {
  if (isIP(host)) return true;
  return host.length <= 253 && host.split(".").every((l) => LABEL.test(l));
}

export function createLeafIssuer(opts: LeafIssuerOptions): LeafIssuer {
  const max = Math.max(1, opts.maxEntries ?? 1000);
  const cache = new Map<string, Promise<SecureContext>>();
  // Loaded at the first leaf, so a bad CA surfaces as a rejected promise the caller can
  // report; the firewall checks its CA with checkCa before it listens to fail fast instead.
  let ready: ReturnType<typeof load> | undefined;
  async function load() {
    const { generateKeyPair, keyPem, loadSigner, signLeaf } = await import("./cert.ts");
    const ca = await loadSigner({ certPem: opts.caCertPem, keyPem: opts.caKeyPem });
    const leafKeys = await generateKeyPair();
    return { ca, leafKeys, leafKeyPem: await keyPem(leafKeys.privateKey), signLeaf };
  }

  async function mint(host: string): Promise<SecureContext> {
    const { ca, leafKeys, leafKeyPem, signLeaf } = await (ready ??= load());
    const cert = await signLeaf({ ca, publicKey: leafKeys.publicKey, hosts: [host] });
    return createSecureContext({ cert, key: leafKeyPem, ciphers: PROXY_CIPHERS, honorCipherOrder: true });
  }

  return {
    contextFor(host) {
      const key = normalizeHost(host);
      if (!isLeafHost(key)) return Promise.reject(new BbError("TLS", `Cannot mint a leaf certificate for ${JSON.stringify(key.slice(0, 80))}: not a host name or an IP address`));
      const hit = cache.get(key);
      if (hit) {
        cache.delete(key); // re-insert: Map order is the recency order
        cache.set(key, hit);
        return hit;
      }
      const p = mint(key);
      cache.set(key, p);
      p.catch(() => cache.delete(key)); // a failed mint is retried next time
      if (cache.size > max) cache.delete(cache.keys().next().value!);
      return p;
    },
  };
}
