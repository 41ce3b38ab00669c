// Test support: a git:// server on loopback that speaks only protocol v0, as an upstream
// does behind an sshd that does not pass GIT_PROTOCOL on or a web server that does not
// pass the Git-Protocol header. It runs git upload-pack / receive-pack on the bare repos
// under `root` and drops the client's "version=2" request.
import { existsSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { start } from "../../../lib/proc.ts";
import { parseRequest, readFirstPkt } from "../pktline.ts";

export interface V0Upstream {
  url: string;
  stop(): Promise<void>;
}

export async function serveV0Upstream(root: string, env: Record<string, string>): Promise<V0Upstream> {
  const children = new Set<ReturnType<typeof start>>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer(async (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    const first = await readFirstPkt(socket, 5_000).catch(() => null);
    const req = first && parseRequest(first.payload);
    if (!req || !["git-upload-pack", "git-receive-pack"].includes(req.service) || req.path.includes("..")) {
      socket.destroy();
      return;
    }
    const plain = join(root, req.path);
    const dir = existsSync(`${plain}.git`) ? `${plain}.git` : plain;
    const child = start(["git", req.service.slice("git-".length), dir], { env: { ...env, GIT_PROTOCOL: undefined }, stdio: ["pipe", "pipe", "inherit"] });
    children.add(child);
    child.once("exit", () => {
      children.delete(child);
      socket.end();
    });
    child.stdin!.on("error", () => {});
    child.stdin!.write(first!.rest);
    socket.pipe(child.stdin!);
    child.stdout!.pipe(socket, { end: false });
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `git://127.0.0.1:${port}`,
    async stop() {
      for (const c of children) c.kill("SIGKILL");
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
