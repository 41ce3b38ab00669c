// Who else uses a loopback address a smolmachines bottle would take. A VM whose TSI
// allowlist is that address reaches every port bound to it, so the address must hold
// nothing but the bottle's own bundle. A bottle's state dir records only its own state
// root's picks: another state root's bottles, another user's and any other host service
// can hold the same address. Both sides are asked, since neither sees everything:
//   - the host's TCP listeners bound to exactly the address (/proc/net/tcp on Linux,
//     netstat on macOS): every user's processes, docker's userland proxy included;
//   - docker's published ports on the address: a published port can have no listener at
//     all (userland-proxy off, where iptables alone forwards it).
// Listeners on the wildcard address are reachable from any loopback address and from
// every bottle alike; they are no one bottle's, and are not counted here.
import { readFile } from "node:fs/promises";
import process from "node:process";
import { boundedDocker } from "./docker/cmd.ts";
import { log } from "./log.ts";
import { procListeners } from "./proc-net-tcp.ts";
import { run } from "./proc.ts";

/** A port bound to a host address: a TCP listener, or a port docker publishes for a container. */
export interface Occupant {
  addr: string;
  port: number;
  /** The docker container publishing it (docker's side), null for a listener. */
  container: string | null;
}

export interface OccupantSources {
  /** TCP listeners bound to a specific IPv4 address (default: this host's, see hostListeners). */
  listeners?: () => Promise<Occupant[]>;
  /** Ports docker publishes on host addresses (default: `docker ps`). */
  published?: () => Promise<Occupant[]>;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** "0100007F" (little-endian, as /proc/net/tcp prints it) -> "127.0.0.1". */
function procIpv4(hex: string): string {
  return [3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join(".");
}

/** Listening sockets in /proc/net/tcp or tcp6 text (IPv4 and IPv4-mapped addresses only). */
export function parseProcNetTcp(text: string): Occupant[] {
  const out: Occupant[] = [];
  for (const { hexAddr: ip, port } of procListeners(text)) {
    let v4: string | null = null;
    if (ip.length === 8) v4 = procIpv4(ip);
    else if (ip.length === 32 && ip.toUpperCase().startsWith("0000000000000000FFFF0000")) v4 = procIpv4(ip.slice(24));
    if (v4 && v4 !== "0.0.0.0") out.push({ addr: v4, port, container: null });
  }
  return out;
}

/** Listening sockets in `netstat -an -p tcp` text (macOS: "tcp4 0 0 127.0.0.16.49152 *.* LISTEN"). */
export function parseNetstat(text: string): Occupant[] {
  const out: Occupant[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (!/^tcp/.test(f[0] ?? "") || f[5] !== "LISTEN") continue;
    const m = /^(.*)\.(\d+)$/.exec(f[3] ?? "");
    if (m && IPV4.test(m[1]!)) out.push({ addr: m[1]!, port: Number(m[2]), container: null });
  }
  return out;
}

/** Published ports in `docker ps --format '{{.Names}}\t{{.Ports}}'` text
 * ("127.0.0.16:32769->8888/tcp, 0.0.0.0:8000-8001->80-81/tcp, :::8000->80/tcp"). */
export function parseDockerPorts(text: string): Occupant[] {
  const out: Occupant[] = [];
  for (const line of text.split("\n")) {
    const tab = line.indexOf("\t");
    if (tab < 0) continue;
    const container = line.slice(0, tab);
    for (const m of line.slice(tab + 1).matchAll(/(\d{1,3}(?:\.\d{1,3}){3}):(\d+)(?:-(\d+))?->/g)) {
      const first = Number(m[2]);
      const last = m[3] ? Number(m[3]) : first;
      for (let port = first; port <= last && port - first < 65536; port++) out.push({ addr: m[1]!, port, container });
    }
  }
  return out;
}

/** This host's TCP listeners on specific IPv4 addresses. */
export async function hostListeners(platform: string = process.platform): Promise<Occupant[]> {
  if (platform === "darwin") return parseNetstat((await run(["netstat", "-an", "-p", "tcp"], { what: "Cannot list this host's TCP listeners" })).stdout);
  const texts = await Promise.all(["/proc/net/tcp", "/proc/net/tcp6"].map((f) => readFile(f, "utf8").catch(() => "")));
  return texts.flatMap(parseProcNetTcp);
}

/** Ports the Docker engine publishes on host addresses (running containers). */
async function dockerPublished(): Promise<Occupant[]> {
  const r = await boundedDocker(["ps", "--no-trunc", "--format", "{{.Names}}\t{{.Ports}}"], { what: "Cannot list the ports docker publishes" });
  return parseDockerPorts(r.stdout);
}

/**
 * Everything bound to `addr`, or to any address when `addr` is omitted. `lenient`: a source
 * that cannot be asked is left out with a debug line (picking an address, where the VM's
 * own start checks again); otherwise its error is thrown (that check: it fails closed).
 */
export async function loopbackOccupants(opts: OccupantSources & { addr?: string; lenient?: boolean } = {}): Promise<Occupant[]> {
  const sources = [opts.listeners ?? (() => hostListeners()), opts.published ?? dockerPublished];
  const found = await Promise.all(
    sources.map((s) =>
      s().catch((e: Error) => {
        if (!opts.lenient) throw e;
        log.debug(`loopback: ${e.message}; going on without it`);
        return [];
      }),
    ),
  );
  return found.flat().filter((o) => opts.addr === undefined || o.addr === opts.addr);
}
