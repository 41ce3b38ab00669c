// Test support: HTTP/1.1 requests to supervise written by hand on a socket, for what a
// client library will not send (a body that never ends, Expect: 100-continue, any Host).
import { connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import assert from "node:assert/strict";
import type { TestContext } from "node:test";

export const INIT = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } } };
export const MCP_HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" };

export interface RawRequest {
  socket: Socket;
  /** Resolves once the server has the request in hand (it answered Expect: 100-continue). */
  taken(): Promise<void>;
  /** The first final response's status code. */
  status(): Promise<number>;
  /** Everything the server sent, once it closed the connection. */
  closed(): Promise<string>;
}

/** POST `body` (which need not be all the body the headers promise) to /mcp on 127.0.0.1:port. */
export function rawRequest(t: TestContext, port: number, head: Record<string, string | number>, body: string, path = "/mcp"): RawRequest {
  const socket = connect(port, "127.0.0.1");
  t.after(() => void socket.destroy());
  let text = "";
  let ended = false;
  const listeners = new Set<() => void>();
  socket.setEncoding("utf8");
  socket.on("data", (d: string) => ((text += d), listeners.forEach((l) => l())));
  socket.on("close", () => ((ended = true), listeners.forEach((l) => l())));
  socket.on("error", () => {});
  const seen = (re: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = re.exec(text);
        if (m) return listeners.delete(check), resolve(m);
        if (ended) listeners.delete(check), reject(new Error(`connection closed before ${re}; got ${JSON.stringify(text.slice(0, 200))}`));
      };
      listeners.add(check);
      check();
    });
  const headers = Object.entries({ host: `127.0.0.1:${port}`, ...MCP_HEADERS, ...head }).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  socket.write(`POST ${path} HTTP/1.1\r\n${headers}\r\n${body}`);
  return {
    socket,
    taken: () => seen(/^HTTP\/1\.1 100 Continue\r\n/).then(() => {}),
    status: () => seen(/HTTP\/1\.1 ([2-5]\d\d) /).then((m) => Number(m[1])),
    closed: () =>
      new Promise((resolve) => {
        const check = () => ended && (listeners.delete(check), resolve(text));
        listeners.add(check);
        check();
      }),
  };
}

/** Polls `value` until it is `want`: the server's side of a socket event arrives when it arrives. */
export async function until(value: () => number | Promise<number>, want: number, what: string): Promise<void> {
  for (let i = 0; i < 500 && (await value()) !== want; i++) await sleep(10);
  assert.equal(await value(), want, what);
}
