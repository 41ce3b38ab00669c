// Test fixture: an upstream on 127.0.0.1 for a proxy's upgrade paths (the firewall's,
// egress's), answering each WebSocket upgrade by how its path starts, spoken by hand so
// nothing frames or buffers it:
//   /refuse-endless   401 with www-authenticate and content-type, then the first chunk of
//                     a chunked body (REFUSAL_START) that never ends
//   /hangup           closes the connection without a word
//   anything else     held without a word
// And the agent's side of the checks each proxy's test makes against it, through the proxy.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { once } from "node:events";
import net from "node:net";
import { WS_UPGRADE } from "./deadline-upstreams.ts";
import { until } from "./until.ts";

const REFUSAL_START = "first bytes of a refusal that never ends\n";
const WWW_AUTHENTICATE = 'Bearer realm="declining upstream"';
const WAIT_MS = 10_000;

export interface DecliningUpstream {
  port: number;
  /**
   * Through the proxy at `proxyPort`, an upgrade of `url` (its path under /refuse-endless):
   * asserts the agent gets the 401, its headers and the first bytes of its body while the
   * upstream is still sending it, and that the agent leaving then closes the upstream's
   * connection.
   */
  checkStreamedRefusal(proxyPort: number, url: string): Promise<void>;
  /** Through the proxy, an upgrade of `url` the upstream holds: asserts the agent leaving
   * before any answer closes the upstream's connection. */
  checkAgentLeavesFirst(proxyPort: number, url: string): Promise<void>;
  /** Through the proxy, an upgrade of `url` (under /hangup): the whole answer the agent gets. */
  hangUpOn(proxyPort: number, url: string): Promise<string>;
  close(): Promise<void>;
}

/** An agent's upgrade of `url` on a connection of its own to the proxy at `proxyPort`. */
async function agentUpgrade(proxyPort: number, url: string) {
  const socket = net.connect(proxyPort, "127.0.0.1");
  socket.on("error", () => {});
  await once(socket, "connect");
  let got = "";
  let closed = false;
  socket.on("data", (c: Buffer) => (got += c.toString("latin1")));
  socket.on("close", () => (closed = true));
  const headers = Object.entries({ Host: new URL(url).host, ...WS_UPGRADE }).map(([k, v]) => `${k}: ${v}\r\n`);
  socket.write(`GET ${url} HTTP/1.1\r\n${headers.join("")}\r\n`);
  const why = () => `the agent got ${JSON.stringify(got)}`;
  return {
    socket,
    got: () => got,
    received: (text: string) => until(`${JSON.stringify(text)} from the proxy`, () => got.includes(text), { timeoutMs: WAIT_MS, why }),
    closed: () => until("the proxy closing the agent's connection", () => closed, { timeoutMs: WAIT_MS, why }),
  };
}

export async function startDecliningUpstream(): Promise<DecliningUpstream> {
  const conns = new Map<string, net.Socket>();
  const gone = new Set<net.Socket>();
  const server = net.createServer((s) => {
    s.on("error", () => {});
    s.on("close", () => gone.add(s));
    let buf = Buffer.alloc(0);
    s.on("data", (c: Buffer) => {
      if (buf.includes("\r\n\r\n")) return; // one request a connection
      buf = Buffer.concat([buf, c]);
      if (!buf.includes("\r\n\r\n")) return;
      const line = buf.subarray(0, buf.indexOf("\r\n")).toString("latin1").replace(/ HTTP\/1\.[01]$/, "");
      conns.set(line, s);
      const path = line.split(" ")[1] ?? "";
      if (path.startsWith("/hangup")) return void s.destroy();
      if (path.startsWith("/refuse-endless")) {
        s.write(`HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: ${WWW_AUTHENTICATE}\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`);
        s.write(`${Buffer.byteLength(REFUSAL_START).toString(16)}\r\n${REFUSAL_START}\r\n`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const why = () => `request lines at the upstream: ${JSON.stringify([...conns.keys()])}`;
  const arrived = (line: string) => until(`${line} at the upstream`, () => conns.has(line), { timeoutMs: WAIT_MS, why });
  const closed = (line: string) => until(`the upstream connection of ${line} closed`, () => gone.has(conns.get(line)!), { timeoutMs: WAIT_MS, why });
  const lineOf = (url: string) => `GET ${new URL(url).pathname}`;
  return {
    port: (server.address() as net.AddressInfo).port,
    async checkStreamedRefusal(proxyPort, url) {
      const agent = await agentUpgrade(proxyPort, url);
      await agent.received(REFUSAL_START);
      assert.ok(!gone.has(conns.get(lineOf(url))!), "the upstream's connection closed before the agent left");
      const [statusLine, ...lines] = agent.got().slice(0, agent.got().indexOf("\r\n\r\n")).split("\r\n");
      assert.equal(statusLine, "HTTP/1.1 401 Unauthorized");
      const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      assert.equal(headers.get("www-authenticate"), WWW_AUTHENTICATE, agent.got());
      assert.equal(headers.get("content-type"), "text/plain", agent.got());
      assert.equal(headers.get("connection"), "close", agent.got());
      assert.equal(headers.get("transfer-encoding"), undefined, "the body is relayed unframed; a transfer-encoding would misframe it");
      agent.socket.destroy();
      await closed(lineOf(url));
    },
    async checkAgentLeavesFirst(proxyPort, url) {
      const agent = await agentUpgrade(proxyPort, url);
      await arrived(lineOf(url));
      agent.socket.destroy();
      await closed(lineOf(url));
    },
    async hangUpOn(proxyPort, url) {
      const agent = await agentUpgrade(proxyPort, url);
      await agent.closed();
      return agent.got();
    },
    close() {
      for (const s of conns.values()) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
