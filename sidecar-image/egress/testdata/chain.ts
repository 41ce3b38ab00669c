// Test fixture: the in-process chain firewall -> egress -> a fake HTTPS upstream the test
// owns, all on 127.0.0.1, every name resolving to that upstream; closed after the file.
import type https from "node:https";
import type net from "node:net";
import { after } from "node:test";
import { createLogger } from "../../../lib/log.ts";
import type { EgressRoutes, FirewallPolicy } from "../../../lib/sidecar-config.ts";
import type { PemPair } from "../../../lib/tls/mod.ts";
import { createFirewall } from "../../firewall/firewall.ts";
import { createEgress } from "../server.ts";

export interface ChainOptions {
  /** The fake upstream (not yet listening); closed with the chain. */
  upstream: https.Server;
  upstreamCa: PemPair;
  bottleCa: PemPair;
  names: string[];
  routes: EgressRoutes["routes"];
  env: Record<string, string>;
  /** The firewall policy's hosts, as bb-bundle writes them for these routes (lib/prepare/files.ts). */
  hosts: FirewallPolicy["hosts"];
}

export async function startChain(o: ChainOptions): Promise<{ egressPort: number; fwPort: number }> {
  const listen = (s: net.Server) => new Promise<number>((r) => s.listen(0, "127.0.0.1", () => r((s.address() as net.AddressInfo).port)));
  const upstreamPort = await listen(o.upstream);
  const egress = createEgress({
    routes: { version: 1, routes: o.routes },
    env: o.env,
    extraCa: [o.upstreamCa.certPem],
    resolve: new Map(o.names.map((n) => [n, { host: "127.0.0.1", port: upstreamPort }])),
    log: createLogger({ level: "error" }),
  });
  const egressPort = await listen(egress.server);
  const policy: FirewallPolicy = { version: 1, slug: "test-bottle", hosts: o.hosts, dlp: { disabled: [], sensitive: [] } };
  const firewall = createFirewall({ policy, ca: o.bottleCa, nextHop: { host: "127.0.0.1", port: egressPort }, log: createLogger({ level: "error" }) });
  const fwPort = (await firewall.listen(0, "127.0.0.1")).port;
  after(async () => {
    await firewall.close();
    await egress.close();
    await new Promise<void>((r) => {
      o.upstream.close(() => r());
      o.upstream.closeAllConnections();
    });
  });
  return { egressPort, fwPort };
}
