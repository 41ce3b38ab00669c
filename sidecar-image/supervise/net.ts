// Addresses on the command line and the wait for a local listener.
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { BbError } from "../../lib/errors.ts";

export interface HostPort {
  host: string;
  port: number;
}

/** "HOST:PORT" (IPv6 as "[::1]:PORT"); port 0 asks the kernel for a free one. */
export function parseHostPort(text: string, flag: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new BbError("USAGE", `${flag} wants HOST:PORT (like 0.0.0.0:9100), got ${JSON.stringify(text)}`);
  return { host: (m[1] ?? m[2])!, port };
}

function accepts(addr: HostPort): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(addr.port, addr.host);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** True once `addr` accepts a TCP connection, false when `timeoutMs` passed first. */
export async function waitForListener(addr: HostPort, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await accepts(addr)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
}
