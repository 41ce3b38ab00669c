// Test-only helpers for the firewall tests (not imported by the daemon): a fake upstream
// (HTTP or HTTPS with its own test CA) that records what reaches it, holds the answers to
// /hold requests until told, and echoes WebSocket frames, the policy a test starts from, and the daemon as a real process
// (alone, and behind egress). The client side is tests/support/raw-http.ts.
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import type { FirewallPolicy } from "../../lib/sidecar-config.ts";
import { mintCa, mintLeaf } from "../../lib/tls/mod.ts";
import { startDaemon, type DaemonProcess } from "../../tests/support/daemon-process.ts";
import { parseWsFrame, wsFrame } from "../../tests/support/ws-frame.mjs";
import { createFirewall, type Firewall, type FirewallOptions } from "./firewall.ts";

export interface Recorded {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface FakeUpstream {
  server: http.Server;
  port: number;
  requests: Recorded[];
  /** Payloads of the WebSocket frames that reached the upstream, in order. */
  wsFrames: string[];
  /** TCP connections accepted so far. */
  connections(): number;
  /** Requests under /hold that arrived whole and are not answered yet. */
  held(): number;
  /** Answer every held request (200, as any other). */
  release(): void;
  close(): Promise<void>;
}

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export async function startUpstream(opts: { tls?: { certPem: string; keyPem: string } } = {}): Promise<FakeUpstream> {
  const requests: Recorded[] = [];
  const wsFrames: string[] = [];
  let connections = 0;
  const held: (() => void)[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString("latin1") });
      // A status line node parses but refuses to write back out (a proxy must not crash on it).
      if (req.url === "/status-099") return void req.socket.end("HTTP/1.1 099 Odd\r\ncontent-length: 0\r\n\r\n");
      // An answer that streams for MS milliseconds: half now, half later.
      const slow = /^\/slow-answer-(\d+)$/.exec(req.url!);
      if (slow) {
        res.writeHead(200, { "content-type": "text/plain", "content-length": 10 });
        res.write("12345");
        return void setTimeout(() => res.end("67890"), Number(slow[1]));
      }
      const answer = () => {
        const body = JSON.stringify({ ok: true, path: req.url });
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
      };
      // A request whose answer has not come: the proxy still holds it (and its body).
      if (req.url!.startsWith("/hold")) return void held.push(answer);
      answer();
    });
  };
  const server = opts.tls ? https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, handler) : http.createServer(handler);
  const sockets = new Set<net.Socket>();
  server.on(opts.tls ? "secureConnection" : "connection", () => connections++);
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket) => {
    requests.push({ method: req.method!, url: req.url!, headers: req.headers, body: "" });
    const accept = createHash("sha1").update(`${req.headers["sec-websocket-key"]}${WS_GUID}`).digest("base64");
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    let buf = Buffer.alloc(0);
    socket.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (let f = parseWsFrame(buf); f; f = parseWsFrame(buf)) {
        buf = buf.subarray(f.size);
        wsFrames.push(f.payload.toString());
        if (f.opcode === 1) socket.write(wsFrame(`echo: ${f.payload.toString()}`, false));
      }
    });
    socket.on("error", () => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    requests,
    wsFrames,
    connections: () => connections,
    held: () => held.length,
    release() {
      for (const answer of held.splice(0)) answer();
    },
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** A TLS upstream for `hosts`, its leaf signed by a CA of its own (`ca`: for the
 * firewall's upstreamCa), which the bottle's agent never trusts. */
export async function startTlsUpstream(hosts: string[]): Promise<{ upstream: FakeUpstream; ca: string }> {
  const ca = await mintCa({ commonName: "test upstream CA" });
  return { upstream: await startUpstream({ tls: await mintLeaf({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, hosts }) }), ca: ca.certPem };
}

/** What became of a client connection: the errors it met, and whether it is closed. */
export function watchConnection(socket: net.Socket): { errors: string[]; closed: () => boolean } {
  const errors: string[] = [];
  let closed = false;
  socket.on("error", (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
  socket.once("close", () => (closed = true));
  return { errors, closed: () => closed };
}

export function policyOf(hosts: (string | { host: string; tlsPassthrough: boolean; ports?: number[] })[], dlp: Partial<FirewallPolicy["dlp"]> = {}): FirewallPolicy {
  return {
    version: 1,
    slug: "test-bottle",
    hosts: hosts.map((h) => (typeof h === "string" ? { host: h, tlsPassthrough: false, routed: false } : { ...h, routed: false })),
    dlp: { disabled: dlp.disabled ?? [], sensitive: dlp.sensitive ?? [] },
  };
}

/**
 * A starter for the firewalls one test file runs on 127.0.0.1 from shared options (each
 * call may override some); after the file's tests they are closed, then `alsoClose`.
 */
export function firewallPool(base: FirewallOptions, alsoClose: { close(): Promise<void> }[] = []): (extra?: Partial<FirewallOptions>) => Promise<number> {
  const open: Firewall[] = [];
  after(async () => {
    await Promise.all(open.map((f) => f.close()));
    for (const c of alsoClose) await c.close();
  });
  return async (extra = {}) => {
    const fw = createFirewall({ ...base, ...extra });
    open.push(fw);
    return (await fw.listen(0, "127.0.0.1")).port;
  };
}

/**
 * The firewall's main.ts as a real process on 127.0.0.1: the policy for `hosts` and the
 * bottle CA `ca` written into `dir` (`policy`: the policy file's path, to rewrite and
 * reload), `extra` flags after them. The caller stops it.
 */
export async function startFirewallProcess(
  dir: string,
  hosts: Parameters<typeof policyOf>[0],
  ca: { certPem: string; keyPem: string },
  extra: string[] = [],
): Promise<DaemonProcess & { policy: string }> {
  const policy = join(dir, "policy.json");
  await writeFile(policy, JSON.stringify(policyOf(hosts)));
  await writeFile(join(dir, "ca.pem"), ca.certPem);
  await writeFile(join(dir, "ca-key.pem"), ca.keyPem);
  const main = new URL("./main.ts", import.meta.url).pathname;
  const fw = await startDaemon(main, ["--listen", "127.0.0.1:0", "--policy", policy, "--ca-cert", join(dir, "ca.pem"), "--ca-key", join(dir, "ca-key.pem"), ...extra]);
  return Object.assign(fw, { policy });
}

export interface FirewallPair {
  ca: { certPem: string; keyPem: string };
  /** The firewall dialing `host` itself. */
  alone: DaemonProcess & { policy: string };
  /** Egress, dialing `host`, and the firewall in front of it (--next-hop). */
  egress: DaemonProcess;
  behindEgress: DaemonProcess & { policy: string };
  stop(): Promise<void>;
}

/** The firewall as a real process both ways it runs, allowing `host`, sent to 127.0.0.1:`port`
 * (--resolve) by whichever daemon dials it; files in a temp dir named from `name`. */
export async function startFirewallPair(name: string, host: string, port: number): Promise<FirewallPair> {
  const dir = await mkdtemp(join(tmpdir(), `bb-${name}-`));
  const ca = await mintCa({ commonName: `${name} bottle CA` });
  for (const sub of ["alone", "behind"]) await mkdir(join(dir, sub));
  const resolve = `--resolve=${host}=127.0.0.1:${port}`;
  const started: DaemonProcess[] = [];
  const stop = async () => {
    for (const d of [...started].reverse()) await d.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const alone = await startFirewallProcess(join(dir, "alone"), [host], ca, [resolve]);
    started.push(alone);
    const egress = await startDaemon(new URL("../egress/main.ts", import.meta.url).pathname, ["--listen", "127.0.0.1:0", resolve]);
    started.push(egress);
    const behindEgress = await startFirewallProcess(join(dir, "behind"), [host], ca, ["--next-hop", `127.0.0.1:${egress.port}`]);
    started.push(behindEgress);
    return { ca, alone, egress, behindEgress, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
