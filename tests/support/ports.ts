// A port nobody listens on right now, for programs that cannot report the one they bound
// (sshd, mitmdump, a daemon told its port up front). Another process may take it before
// the caller binds it; on a test machine that race is rare enough to accept.
import net from "node:net";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A listener on `host` (any free port) that answers with nothing, closed when the test ends. */
export async function listenOn(t: { after(fn: () => unknown): void }, host: string): Promise<number> {
  const server = net.createServer((c) => c.end());
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, host, () => resolve()));
  t.after(() => new Promise((r) => server.close(r)));
  return (server.address() as net.AddressInfo).port;
}
