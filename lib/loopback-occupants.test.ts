import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { hostListeners, loopbackOccupants, parseDockerPorts, parseNetstat, parseProcNetTcp } from "./loopback-occupants.ts";
import { listenOn } from "../tests/support/ports.ts";
import { skipWhen } from "../tests/support/skip.ts";

test("parseProcNetTcp() reads listeners on specific IPv4 and IPv4-mapped addresses, not the wildcard or other states", () => {
  const tcp = [
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
    "   0: 1000007F:7D01 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 100 0 0 10 0",
    "   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0",
    "   2: 1000007F:7D02 1000007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0",
  ].join("\n");
  assert.deepEqual(parseProcNetTcp(tcp), [{ addr: "127.0.0.16", port: 0x7d01, container: null }]);
  const tcp6 = [
    "  sl  local_address                         remote_address                        st",
    "   0: 0000000000000000FFFF00001100007F:2328 00000000000000000000000000000000:0000 0A 00000000:00000000",
    "   1: 00000000000000000000000001000000:2329 00000000000000000000000000000000:0000 0A 00000000:00000000",
    "   2: 00000000000000000000000000000000:232A 00000000000000000000000000000000:0000 0A 00000000:00000000",
  ].join("\n");
  assert.deepEqual(parseProcNetTcp(tcp6), [{ addr: "127.0.0.17", port: 0x2328, container: null }]);
});

test("parseNetstat() reads macOS listeners on specific IPv4 addresses", () => {
  const text = [
    "Active Internet connections (including servers)",
    "Proto Recv-Q Send-Q  Local Address          Foreign Address        (state)",
    "tcp4       0      0  127.0.0.16.49152       *.*                    LISTEN",
    "tcp46      0      0  *.8080                 *.*                    LISTEN",
    "tcp4       0      0  127.0.0.17.50000       127.0.0.17.60000       ESTABLISHED",
    "tcp6       0      0  ::1.5432               *.*                    LISTEN",
  ].join("\n");
  assert.deepEqual(parseNetstat(text), [{ addr: "127.0.0.16", port: 49152, container: null }]);
});

test("parseDockerPorts() reads every published port with its container, ranges included", () => {
  const text = [
    "bb-a-bundle\t127.0.0.16:32769->8888/tcp, 127.0.0.16:32770->9100/tcp",
    "web\t0.0.0.0:8000-8001->80-81/tcp, :::8000-8001->80-81/tcp",
    "quiet\t",
  ].join("\n");
  assert.deepEqual(parseDockerPorts(text), [
    { addr: "127.0.0.16", port: 32769, container: "bb-a-bundle" },
    { addr: "127.0.0.16", port: 32770, container: "bb-a-bundle" },
    { addr: "0.0.0.0", port: 8000, container: "web" },
    { addr: "0.0.0.0", port: 8001, container: "web" },
  ]);
});

const noProc = process.platform !== "linux" && "reads /proc/net/tcp";

test("hostListeners() sees a real listener on a loopback address (another user's service, another bottle's bundle)", skipWhen(noProc, "hostListeners"), async (t) => {
  const port = await listenOn(t, "127.0.0.251");
  assert.ok((await hostListeners("linux")).some((o) => o.addr === "127.0.0.251" && o.port === port));
  const found = await loopbackOccupants({ addr: "127.0.0.251", published: async () => [] });
  assert.deepEqual(found, [{ addr: "127.0.0.251", port, container: null }]);
});

test("loopbackOccupants() throws when a source cannot be asked, unless lenient", async () => {
  const published = () => Promise.reject(new Error("Cannot list the ports docker publishes: engine down"));
  await assert.rejects(loopbackOccupants({ listeners: async () => [], published }), /engine down/);
  assert.deepEqual(await loopbackOccupants({ listeners: async () => [], published, lenient: true }), []);
});
