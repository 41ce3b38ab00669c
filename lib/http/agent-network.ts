// On the docker backend the bundle sits on two networks: the agent's --internal one, where
// the host holds no address, and the egress network, a plain bridge that every process on
// the host (any user's) reaches through its gateway. The agent-facing daemons listen on
// every address, since the internal network is attached only after they start; so a
// connection that arrives on the egress side is someone on the host using the bottle's
// hosts, its credentials (egress injects them) and its repositories. Refused.
//
// The egress side is the interface holding the default route: the internal network has
// no way out, so it never gives one.
import { readFileSync } from "node:fs";
import type { Server } from "node:net";
import { networkInterfaces, type NetworkInterfaceInfo } from "node:os";
import { BbError } from "../errors.ts";
import type { Logger } from "../log.ts";

/** The interfaces /proc/net/route (its text) sends the default route through. */
export function defaultRouteInterfaces(routeTable: string): string[] {
  return routeTable
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length >= 8 && cols[1] === "00000000" && cols[7] === "00000000")
    .map((cols) => cols[0]!);
}

/** Every address of those interfaces: the ones a connection from the host arrives on. */
export function egressSideAddresses(routeTable: string, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): Set<string> {
  return new Set(defaultRouteInterfaces(routeTable).flatMap((name) => (interfaces[name] ?? []).map((i) => i.address)));
}

/** "::ffff:172.28.0.2" is how an IPv4 peer looks on a dual-stack socket. */
const plain = (address: string | undefined) => (address ?? "").replace(/^::ffff:(?=\d+\.)/, "");

/**
 * Close every connection `server` accepts on an egress-side address, before a byte of it is
 * read. Fails (fail closed) when no interface holds the default route: then the sides
 * cannot be told apart, and serving anyway would serve the host.
 */
export function agentNetworkOnly(server: Server, daemon: string, log: Logger, refused = egressSideAddresses(readFileSync("/proc/net/route", "utf8"), networkInterfaces())): void {
  if (refused.size === 0) {
    throw new BbError("CONFIG", `${daemon} --agent-network-only: no interface holds a default route (/proc/net/route), so the egress network cannot be told from the agent's`);
  }
  log.info(`refusing connections on the egress network's side (${[...refused].join(", ")})`);
  let said = false;
  server.prependListener("connection", (socket) => {
    if (!refused.has(plain(socket.localAddress))) return;
    // Once: a flood of these must not flood the log with it.
    if (!said) log.warn(`refused a connection from ${plain(socket.remoteAddress)} on the egress network's side (${plain(socket.localAddress)}): only the agent's network is served`);
    said = true;
    socket.destroy();
  });
}
