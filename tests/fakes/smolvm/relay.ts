// How the stand-in imitates TSI's allowlist. A smolvm guest's sockets are opened by the
// host on its behalf, and only toward allowed addresses; so a guest allowed 127.0.0.1/32
// reaches the host's loopback services and nothing else. Here the guest container has no
// network interfaces at all (docker --network none); for every TCP listener the host has
// on an allowed address, a pair of socat relays joins the two sides through a unix socket
// (a path on the shared filesystem, so it crosses network namespaces):
//
//   guest netns: socat TCP-LISTEN:<port>,bind=<addr>  ->  UNIX-CONNECT:<dir>/<addr>_<port>.sock
//   host netns:  socat UNIX-LISTEN:<dir>/<addr>_<port>.sock  ->  TCP:<addr>:<port>
//
// Limits, on purpose: TCP only (no UDP, hence no DNS), /32 allowlists only, and listeners
// are picked up at `machine start` and again at every `machine exec`. Everything else the
// guest dials finds no route, where real TSI would answer "permission denied".
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { run, start, which } from "../../../lib/proc.ts";
import { machineKey } from "./runtime.ts";
import { FakeError } from "./state.ts";

/**
 * Short (unix socket paths are limited to 108 bytes) and unique per (HOME, machine), in
 * the stand-in's temp dir (a harness that gave it another TMPDIR passes that as `tmp`).
 */
export function relayDir(machine: string, home?: string, tmp = tmpdir()): string {
  return join(tmp, `bbfs-${machineKey(machine, home)}`);
}

/** The host addresses an allowlist names; only single-address (/32) entries are emulated. */
export function allowedAddresses(cidrs: string[]): string[] {
  return cidrs.map((c) => {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/32$/.exec(c);
    if (!m) throw new FakeError(`the stand-in emulates only single-address IPv4 allowlists (a.b.c.d/32), not ${c}`);
    return m[1]!;
  });
}

function hexToIpv4(hex: string): string {
  // /proc/net/tcp prints the address as a little-endian 32-bit hex number.
  return [3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join(".");
}

/** Ports the host listens on (TCP, LISTEN) that a socket bound to `addr` would reach. */
function hostListeners(addr: string): number[] {
  const ports = new Set<number>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== "0A") continue;
      const [ip, port] = f[1]!.split(":") as [string, string];
      const wildcard = /^0+$/.test(ip);
      const match = ip.length === 8 ? hexToIpv4(ip) === addr : ip.toUpperCase() === `0000000000000000FFFF0000${ipv4Hex(addr)}`;
      if (wildcard || match) ports.add(parseInt(port, 16));
    }
  }
  return [...ports].sort((a, b) => a - b);
}

function ipv4Hex(addr: string): string {
  return addr
    .split(".")
    .reverse()
    .map((o) => Number(o).toString(16).padStart(2, "0"))
    .join("")
    .toUpperCase();
}

function spawnDetached(argv: string[]): number {
  const child = start(argv, { stdio: "ignore" });
  child.unref();
  return child.pid!;
}

/** Make sure every host listener on an allowed address has its relay pair into the guest. */
export async function syncRelays(opts: { name: string; pid: number; cidrs: string[] }): Promise<void> {
  const addrs = allowedAddresses(opts.cidrs);
  // Checked up front: a detached spawn of a missing program would only crash the stand-in.
  for (const tool of ["socat", "nsenter"]) {
    if (!(await which(tool))) throw new FakeError(`the stand-in needs ${tool} on PATH to relay allowed addresses into the guest (scripts/ensure-host-tools.sh installs it)`);
  }
  const dir = relayDir(opts.name);
  mkdirSync(dir, { recursive: true });
  for (const addr of addrs) {
    if (!addr.startsWith("127.")) {
      // Loopback (127/8) is already local in the guest's netns; any other address is not.
      await run(["nsenter", "-t", String(opts.pid), "-n", "ip", "addr", "replace", `${addr}/32`, "dev", "lo"]);
    }
    for (const port of hostListeners(addr)) {
      const key = `${addr}_${port}`;
      try {
        writeFileSync(join(dir, `${key}.pids`), "", { flag: "wx" }); // first exec to get here owns this relay
      } catch {
        continue;
      }
      const sock = join(dir, `${key}.sock`);
      const host = spawnDetached(["socat", `UNIX-LISTEN:${sock},fork,unlink-early`, `TCP:${addr}:${port}`]);
      const guest = spawnDetached(["nsenter", "-t", String(opts.pid), "-n", "socat", `TCP-LISTEN:${port},bind=${addr},fork,reuseaddr`, `UNIX-CONNECT:${sock}`]);
      writeFileSync(join(dir, `${key}.pids`), `${host} ${guest}\n`);
    }
  }
  // Let the relays bind before the guest's first connect.
  await new Promise((r) => setTimeout(r, 150));
}

/** Stop this machine's relays (by the PIDs recorded when they were started). */
export function stopRelays(name: string, home?: string, tmp?: string): void {
  const dir = relayDir(name, home, tmp);
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".pids"));
  } catch {
    return;
  }
  for (const f of files) {
    for (const pid of readFileSync(join(dir, f), "utf8").trim().split(/\s+/).filter(Boolean).map(Number)) {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
}
