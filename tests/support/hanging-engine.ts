// Test helper: a Docker engine that stops answering, on a Unix socket of the test's own
// (DOCKER_HOST=unix://...). The docker CLI has no time limit of its own, so this is how a
// test stages an engine that accepts connections and never replies. Without `via`, nothing
// is answered at all; with `via` (the real engine's socket), every request passes through
// except those whose request line matches `hangOn`, which are held forever, along with
// anything after them on that connection. `refuse` instead answers the requests it matches
// (request line and body) with the engine's error, as an engine that refused them would.
import { Buffer } from "node:buffer";
import net from "node:net";
import { join } from "node:path";
import process from "node:process";
import type { TestContext } from "node:test";
import { tempDir } from "./tmp.ts";

interface HangingEngine {
  /** For DOCKER_HOST. */
  host: string;
  /** Request lines ("DELETE /v1.50/containers/x?force=1") held (or refused) so far. */
  held: string[];
  /** Wait up to ~5 s for every docker CLI's connection to close (a CLI that was killed
   * has closed its own); resolves with how many are still open. */
  clientsClosed(): Promise<number>;
}

/** The real engine's socket, from DOCKER_HOST or docker's default. */
export function realEngineSocket(): string {
  const host = process.env.DOCKER_HOST;
  if (host?.startsWith("unix://")) return host.slice("unix://".length);
  return "/var/run/docker.sock";
}

interface Refusal {
  line: RegExp;
  /** Matched against the request's body too (an exec's {"Tty":true}); any body without it. */
  body?: RegExp;
}

export async function hangingEngine(t: TestContext, opts: { via?: string; hangOn?: RegExp; refuse?: Refusal } = {}): Promise<HangingEngine> {
  const path = join(await tempDir(t, "bb-hung-engine-"), "docker.sock");
  const held: string[] = [];
  const sockets = new Set<net.Socket>();
  const clients = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => s.destroy());
  };
  // Half-open both ways: the docker CLI ends its side of an exec's hijacked stream when its
  // stdin ends, and still reads the command's output after.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    track(client);
    clients.add(client);
    client.on("close", () => clients.delete(client));
    if (!opts.via) {
      client.resume(); // read and never answer
      client.on("end", () => client.end()); // until the CLI goes
      return;
    }
    const upstream = net.connect({ path: opts.via, allowHalfOpen: true });
    track(upstream);
    upstream.pipe(client);
    upstream.on("close", () => client.destroy());
    client.on("close", () => upstream.destroy());
    let holding = false;
    // A request `refuse` names, gathered until its body is whole (the CLI may write it apart).
    let pending: Buffer | null = null;
    client.on("data", (chunk: Buffer) => {
      if (holding) return;
      if (pending) chunk = Buffer.concat([pending, chunk]);
      pending = null;
      // The docker CLI writes each request whole; a request line starts a chunk or follows
      // the previous request's end.
      const text = chunk.toString("latin1");
      const line = text.match(/(?:^|\r\n)([A-Z]+ \S+) HTTP\/1\.1\r\n/)?.[1];
      if (line && opts.hangOn?.test(line)) {
        holding = true;
        held.push(line);
        return;
      }
      if (line && opts.refuse?.line.test(line)) {
        const end = text.indexOf("\r\n\r\n");
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? 0);
        if (end < 0 || chunk.length < end + 4 + length) {
          pending = chunk;
          return;
        }
        if (!opts.refuse.body || opts.refuse.body.test(text.slice(end + 4, end + 4 + length))) {
          held.push(line);
          const body = JSON.stringify({ message: `refused by the test's engine: ${line}` });
          client.write(`HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
          return;
        }
      }
      upstream.write(chunk);
    });
    client.on("end", () => (holding ? client.end() : upstream.end()));
  });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(path, resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const clientsClosed = async () => {
    for (let i = 0; i < 50 && clients.size > 0; i++) await new Promise((r) => setTimeout(r, 100));
    return clients.size;
  };
  return { host: `unix://${path}`, held, clientsClosed };
}
