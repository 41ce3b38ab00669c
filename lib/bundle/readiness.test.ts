import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import net from "node:net";
import { listeningPorts } from "./readiness.ts";

test("listeningPorts finds this process's own listening socket in the real /proc/net/tcp{,6}", async (t) => {
  const server = net.createServer().listen(0, "0.0.0.0");
  await new Promise((r) => server.once("listening", r));
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const text = ["/proc/net/tcp", "/proc/net/tcp6"].map((f) => { try { return readFileSync(f, "utf8"); } catch { return ""; } }).join("\n");
  assert.ok(listeningPorts(text).has(port));
});

test("listeningPorts ignores established connections and headers", () => {
  const text = `  sl  local_address rem_address   st tx_queue rx_queue
   0: 00000000:22B8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0
   1: 0100007F:238C 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0`;
  assert.deepEqual([...listeningPorts(text)], [0x22b8]);
});
