// Test fixture: the in-process chain firewall -> egress -> a fake HTTPS upstream the test
// owns, all on 127.0.0.1, every name resolving to that upstream; closed after the file.
// The firewall reaches egress through a relay that records what it sent, so a test can
// show what the firewall (and its DLP) ever had in hand.
import { Buffer } from "node:buffer";
import type https from "node:https";
import net from "node:net";
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

export interface Chain {
  egressPort: number;
  fwPort: number;
  /** Every byte the firewall has sent to its next hop so far (it reaches egress through a
   * recording relay), as latin1: what left the firewall's hands. */
  sentByFirewall(): string;
}

/** A TCP relay to `port` that keeps a copy of what its clients send; close() drops every connection. */
function recordingRelay(port: number): { server: net.Server; sent: Buffer[]; close(): Promise<void> } {
  const sent: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const next = net.connect(port, "127.0.0.1");
    for (const s of [client, next]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    }
    client.on("data", (b: Buffer) => void sent.push(b));
    client.pipe(next).pipe(client);
    client.on("error", () => next.destroy());
    next.on("error", () => client.destroy());
    client.on("close", () => next.destroy());
    next.on("close", () => client.destroy());
  });
  const close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      for (const s of sockets) s.destroy();
    });
  return { server, sent, close };
}

export async function startChain(o: ChainOptions): Promise<Chain> {
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
  const relay = recordingRelay(egressPort);
  const relayPort = await listen(relay.server);
  const policy: FirewallPolicy = { version: 1, slug: "test-bottle", hosts: o.hosts, dlp: { disabled: [], sensitive: [] } };
  const firewall = createFirewall({ policy, ca: o.bottleCa, nextHop: { host: "127.0.0.1", port: relayPort }, log: createLogger({ level: "error" }) });
  const fwPort = (await firewall.listen(0, "127.0.0.1")).port;
  after(async () => {
    await firewall.close();
    await relay.close();
    await egress.close();
    await new Promise<void>((r) => {
      o.upstream.close(() => r());
      o.upstream.closeAllConnections();
    });
  });
  return { egressPort, fwPort, sentByFirewall: () => Buffer.concat(relay.sent).toString("latin1") };
}
