// The lifecycle every sidecar daemon's main.ts shares: parse the HOST:PORT it listens on,
// bind and report the real address (port 0 picks a free one; tests read it from the
// "listening on" line), then run until SIGTERM/SIGINT.
import net from "node:net";
import process from "node:process";
import v8 from "node:v8";
import type { Server } from "node:net";
import { BbError } from "./errors.ts";

export interface HostPort {
  host: string;
  port: number;
}

/**
 * GC tuning for the daemons that relay response bodies (firewall, egress). Every TLS record
 * a relay reads arrives in its own 16 KiB Buffer, and at a few hundred MiB/s that external
 * memory keeps V8 starting incremental marking: dozens of mark-compacts a second that
 * free almost nothing (the heap proper is ~12 MB), about a third of the relay's CPU. Without
 * incremental marking the same pressure is met by scavenges, and memory stays as bounded
 * (`just bench proxy`: 1 MiB responses through firewall→egress went from ~8 to ~3.8 ms of
 * proxy CPU per request, peak RSS unchanged). Set at startup, before any traffic; a runtime
 * without V8 flags (Deno's node:v8 shim) simply keeps its default.
 */
export function tuneGcForRelaying(): void {
  try {
    v8.setFlagsFromString("--no-incremental-marking");
  } catch {
    // not V8 / not supported: the default GC is correct, only slower under bulk traffic
  }
}

/** "127.0.0.1:9099", "[::1]:9099" -> {host, port}; `what` names the flag in errors. */
export function parseHostPort(text: string, what: string): HostPort {
  const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : -1;
  if (!m || port > 65535) throw new BbError("USAGE", `${what}: expected HOST:PORT, got ${JSON.stringify(text)}`);
  const host = m[1]!.startsWith("[") ? m[1]!.slice(1, -1) : m[1]!;
  if (host !== "localhost" && net.isIP(host) === 0 && !/^[A-Za-z0-9.-]+$/.test(host)) {
    throw new BbError("USAGE", `${what}: ${JSON.stringify(host)} is not a host name or IP address`);
  }
  return { host, port };
}

/** Repeated `--resolve HOST=IP:PORT` flags as a map from lower-case host name to address. */
export function parseResolveList(items: string[]): Map<string, HostPort> {
  const map = new Map<string, HostPort>();
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new BbError("USAGE", `--resolve: expected host=IP:PORT, got ${JSON.stringify(item)}`);
    map.set(item.slice(0, eq).toLowerCase(), parseHostPort(item.slice(eq + 1), "--resolve"));
  }
  return map;
}

/** Listen and resolve with the bound address as "host:port" (IPv6 bracketed). */
export function listen(server: Server, at: HostPort): Promise<string> {
  return new Promise((resolve, reject) => {
    // No daemon name: its error line starts with it already (createProgram).
    const onError = (e: NodeJS.ErrnoException) =>
      reject(new BbError("CONFIG", `Cannot listen on ${at.host}:${at.port}: ${e.code ?? e.message}`, { cause: e }));
    server.once("error", onError);
    server.listen(at.port, at.host, () => {
      server.off("error", onError);
      const a = server.address() as net.AddressInfo;
      resolve(a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
    });
  });
}

/** Resolve once SIGTERM or SIGINT arrives, after `stop` has run. */
export function untilTerminated(stop: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const onSignal = () => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      stop().then(resolve, resolve);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}
