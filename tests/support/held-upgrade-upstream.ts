// Test fixture: an upstream on 127.0.0.1 for a proxy's upgrade path that answers each
// upgrade only when the test says (a 101, with frames of its own in the same write, or a
// 401), so a test can send frames before the answer; it records every byte that reaches
// it after each upgrade's head. A request that asks no upgrade is answered 200 at once,
// its head for a body, and its connection kept.
// Spoken by hand over net, so nothing frames or buffers either side. And the agent's
// side: a raw connection to the proxy, how many sockets a daemon process holds, and the
// checks each proxy's test makes through it that the proxy lets go of a connection.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { readdir, readlink } from "node:fs/promises";
import net from "node:net";
import { until } from "./until.ts";
import { parseWsFrame, wsFrame } from "./ws-frame.mjs";

const WAIT_MS = 10_000;
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
export const WS_KEY = "dGhlIHNhbXBsZSBub25jZQ==";
export const DECLINED = "declined by the upstream\n";

export interface HeldUpgrade {
  /** The request head as it arrived, status line first. */
  head: string;
  /** Every byte that arrived after the head. */
  after(): Buffer;
  closed(): boolean;
  /** Answer 101, with `frames` (server frames) in the same write. */
  switchWith(frames?: Buffer): void;
  /** Answer 401 with a short body, keeping the connection. */
  decline(): void;
}

/** A proxy run as a process: its port, and its pid for its sockets. */
export interface ProxyProcess {
  port: number;
  pid: number;
}

export interface HeldUpgradeUpstream {
  port: number;
  /** The request for `path` once its head has arrived. */
  arrived(path: string): Promise<HeldUpgrade>;
  /**
   * Through `proxy`, an upgrade of `path` the upstream declines after the agent sent a
   * frame behind its head: asserts the agent gets the refusal whole, that nothing after
   * the head reached the upstream, and that once the agent closes its side the proxy holds
   * no more sockets than before.
   */
  checkDeclinedLetsGo(proxy: ProxyProcess, path: string): Promise<void>;
  /** Through `proxy`, an upgrade of `path` the agent half-closes after a frame, before any
   * answer: asserts the upstream's connection is closed, nothing after the head reached
   * it, and the proxy holds no more sockets than before. */
  checkHalfCloseLetsGo(proxy: ProxyProcess, path: string): Promise<void>;
  close(): Promise<void>;
}

export async function startHeldUpgradeUpstream(): Promise<HeldUpgradeUpstream> {
  const requests = new Map<string, HeldUpgrade>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    let closed = false;
    s.on("close", () => (closed = true));
    let buf = Buffer.alloc(0);
    let got: HeldUpgrade | null = null;
    const after: Buffer[] = [];
    s.on("data", (c: Buffer) => {
      if (got) return void after.push(c);
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf("\r\n\r\n");
      if (end === -1) return;
      const head = buf.subarray(0, end).toString("latin1");
      const rest = buf.subarray(end + 4);
      const path = head.split(" ")[1] ?? "";
      const key = /^sec-websocket-key: *(\S+)/im.exec(head)?.[1];
      got = {
        head,
        after: () => Buffer.concat(after),
        closed: () => closed,
        switchWith(frames = Buffer.alloc(0)) {
          const accept = createHash("sha1").update(`${key}${WS_GUID}`).digest("base64");
          s.write(Buffer.concat([Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`), frames]));
        },
        decline() {
          s.write(`HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: ${DECLINED.length}\r\n\r\n${DECLINED}`);
        },
      };
      requests.set(path, got);
      if (/^upgrade:/im.test(head)) {
        if (rest.length) after.push(rest);
        return;
      }
      // A plain request (no body): answered, and the connection kept for the next one.
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${head.length}\r\n\r\n${head}`);
      got = null;
      buf = Buffer.alloc(0);
      if (rest.length) s.emit("data", rest);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const arrived = async (path: string) => {
    await until(`the request for ${path} at the upstream`, () => requests.has(path), { timeoutMs: WAIT_MS, why: () => `it has ${JSON.stringify([...requests.keys()])}` });
    return requests.get(path)!;
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    arrived,
    async checkDeclinedLetsGo(proxy, path) {
      const baseline = await socketsOf(proxy.pid);
      const agent = await rawAgent(proxy.port);
      await written(agent.socket, upgradeHead(`http://ws.test${path}`));
      const held = await arrived(path); // the head read: what follows is not node's `head`
      await written(agent.socket, wsFrame("after the request", true));
      held.decline();
      await agent.received("the upstream's refusal, whole", () => agent.got().toString("latin1").endsWith(DECLINED));
      assert.match(agent.got().toString("latin1"), /^HTTP\/1\.1 401 Unauthorized\r\n/);
      await agent.ended();
      agent.socket.end();
      await releasedTo(proxy.pid, baseline, "the proxy letting go of the declined upgrade's sockets");
      assert.equal(held.after().length, 0, "bytes the agent sent after its head reached the upstream");
      agent.socket.destroy();
    },
    async checkHalfCloseLetsGo(proxy, path) {
      const baseline = await socketsOf(proxy.pid);
      const agent = await rawAgent(proxy.port);
      await written(agent.socket, upgradeHead(`http://ws.test${path}`));
      const held = await arrived(path);
      await written(agent.socket, wsFrame("before the answer", true));
      agent.socket.end();
      await agent.received("the upstream's connection closed", () => held.closed());
      await releasedTo(proxy.pid, baseline, "the proxy letting go of the abandoned upgrade's sockets");
      assert.equal(held.after().length, 0, "bytes the agent sent after its head reached the upstream");
      agent.socket.destroy();
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** Write `bytes` and wait until they are handed to the kernel: on loopback, at the peer. */
export const written = (socket: net.Socket, bytes: string | Buffer) => new Promise<void>((r) => socket.write(bytes, () => r()));

/** The whole WebSocket frames in `bytes`, in order. */
export function framesIn(bytes: Buffer): { opcode: number; payload: Buffer }[] {
  const out = [];
  for (let f = parseWsFrame(bytes); f; f = parseWsFrame(bytes)) {
    out.push(f);
    bytes = bytes.subarray(f.size);
  }
  return out;
}

/** The payloads of the whole WebSocket frames in `bytes`, as text. */
export const frameTexts = (bytes: Buffer) => framesIn(bytes).map((f) => f.payload.toString());

/** The upgrade request head an agent sends through a proxy for `url` (absolute form). */
export function upgradeHead(url: string, extra = ""): string {
  return `GET ${url} HTTP/1.1\r\nHost: ${new URL(url).host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
}

/** An agent's raw connection to the proxy at `port`: what it got, whether the proxy ended it. */
export async function rawAgent(port: number) {
  const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
  socket.on("error", () => {});
  await once(socket, "connect");
  let got = Buffer.alloc(0);
  let ended = false;
  let closed = false;
  socket.on("data", (c: Buffer) => (got = Buffer.concat([got, c])));
  socket.on("end", () => (ended = true));
  socket.on("close", () => (closed = true));
  const why = () => `the agent got ${JSON.stringify(got.toString("latin1"))}`;
  return {
    socket,
    got: () => got,
    /** What came after the answer's head. */
    body: () => got.subarray(got.indexOf("\r\n\r\n") + 4),
    /** Whether the proxy has ended the agent's connection. */
    isEnded: () => ended,
    received: (what: string, ok: () => boolean) => until(what, ok, { timeoutMs: WAIT_MS, why }),
    ended: () => until("the proxy ending the agent's connection", () => ended, { timeoutMs: WAIT_MS, why }),
    closed: () => until("the agent's connection closed", () => closed, { timeoutMs: WAIT_MS, why }),
  };
}

/** How many sockets process `pid` holds open (Linux: its /proc fd table). */
export async function socketsOf(pid: number): Promise<number> {
  let n = 0;
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const to = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
    if (to.startsWith("socket:")) n++;
  }
  return n;
}

/** Waits until process `pid` holds no more sockets than `count` (`what` names the check). */
export function releasedTo(pid: number, count: number, what: string): Promise<void> {
  let now = -1;
  return until(what, async () => (now = await socketsOf(pid)) <= count, { timeoutMs: WAIT_MS, why: () => `it holds ${now} sockets, ${count} before` });
}
