// A proxy's TLS client side to its upstreams, made at the first TLS upstream rather than
// at start: a process's first SecureContext loads node's root store, ~30 ms on the bundle's
// Node 18, which would otherwise be on the bundle's start (bb-provision waits until every
// daemon listens), and which the firewall with a next hop never needs for upstreams.
import https from "node:https";
import type tls from "node:tls";
import { clientContext } from "./ciphers.ts";

/** clientContext(extraCa), made at the first call and the same one after. */
export function lazyClientContext(extraCa?: string[]): () => tls.SecureContext {
  let context: tls.SecureContext | undefined;
  return () => (context ??= clientContext(extraCa));
}

interface LazyHttpsAgent {
  /** The agent, made at the first call. */
  get(): https.Agent;
  /** Destroy it, if it was made. */
  destroy(): void;
}

/** An https.Agent with `options` and the context `secureContext()` gives, made at the first get(). */
export function lazyHttpsAgent(options: https.AgentOptions, secureContext: () => tls.SecureContext): LazyHttpsAgent {
  let agent: https.Agent | undefined;
  return {
    get: () => (agent ??= new https.Agent({ ...options, secureContext: secureContext() })),
    destroy: () => agent?.destroy(),
  };
}
