// The wait for a local listener (the firewall coming back after init restarted it).
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { HostPort } from "../../lib/daemon.ts";

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
