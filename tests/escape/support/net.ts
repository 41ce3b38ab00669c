// Network helpers for the escape suite: gateways of docker networks (this machine's own
// addresses), throwaway control containers that show a target is reachable from an
// ordinary network (so a "cannot reach" test can fail), and a TCP listener on the host.
import { createServer, type Server } from "node:net";
import { run, type RunResult, ANY_EXIT } from "../../../lib/proc.ts";
import { ensureImage } from "../../../lib/images/mod.ts";
import { newId, TEST_LABELS } from "./env.ts";

/** The gateway docker assigned to a network (its host side, unless the bridge has no address). */
export async function gatewayOf(network: string): Promise<string> {
  const r = await run(["docker", "network", "inspect", network, "--format", "{{range .IPAM.Config}}{{.Gateway}} {{end}}"]);
  const gw = r.stdout.trim().split(/\s+/).find((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a));
  if (gw) return gw;
  // The default bridge lists none (its address is the daemon's --bip): ask a container's
  // routing table, where it is the default route's next hop (hex, little-endian).
  const route = await control({ network, script: "awk '$2 == \"00000000\" { print $3; exit }' /proc/net/route" });
  const hex = route.stdout.trim();
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) throw new Error(`network ${network} has no IPv4 gateway (${route.stdout}${route.stderr})`);
  return [3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join(".");
}

/** Run a bash script in a fresh agent-image container on `network` (removed after). */
export async function control(opts: { network: string; script: string; dns?: string[]; timeoutMs?: number }): Promise<RunResult> {
  const image = (await ensureImage("agent")).ref;
  const labels = Object.entries(TEST_LABELS).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
  const dns = (opts.dns ?? []).flatMap((ip) => ["--dns", ip]);
  return run(
    ["docker", "run", "--rm", "--name", `bbx-${newId()}-control`, ...labels, "--network", opts.network, ...dns, "--entrypoint", "bash", image, "-c", opts.script],
    { expect: ANY_EXIT, timeoutMs: opts.timeoutMs ?? 60_000 },
  );
}

/** A bash snippet: can a TCP connection to host:port be opened within `seconds`? Prints "open host:port" or "closed host:port". */
export function tcpProbe(host: string, port: number, seconds = 4): string {
  return `if timeout ${seconds} bash -c 'exec 3<>/dev/tcp/${host}/${port}' 2>/dev/null; then echo "open ${host}:${port}"; else echo "closed ${host}:${port}"; fi`;
}

/** Bash running the snippets concurrently (each prints its own line), waiting for all. */
export function parallel(snippets: string[]): string {
  return snippets.map((s) => `( ${s} ) &`).join("\n") + "\nwait";
}

interface HostListener {
  port: number;
  /** Remote addresses of every connection accepted so far. */
  hits: string[];
  close(): Promise<void>;
}

/** A TCP listener on all of this machine's IPv4 addresses, on a free port. */
export async function hostListener(): Promise<HostListener> {
  const hits: string[] = [];
  const server: Server = createServer((socket) => {
    hits.push(socket.remoteAddress ?? "?");
    socket.on("error", () => {});
    socket.end("host\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "0.0.0.0", resolve);
  });
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("listener has no port");
  return { port: address.port, hits, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
