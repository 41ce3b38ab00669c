// The lifecycle every sidecar daemon's main.ts shares: parse the HOST:PORT it listens on,
// bind and report the real address (port 0 picks a free one; tests read it from the
// "listening on" line), then run until SIGTERM/SIGINT.
import net from "node:net";
import process from "node:process";
import type { Server } from "node:net";
import { BbError } from "./errors.ts";

export interface HostPort {
  host: string;
  port: number;
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

/** Listen and resolve with the bound address as "host:port" (IPv6 bracketed). */
export function listen(server: Server, at: HostPort, daemon: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) =>
      reject(new BbError("CONFIG", `${daemon} cannot listen on ${at.host}:${at.port}: ${e.code ?? e.message}`, { cause: e }));
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
