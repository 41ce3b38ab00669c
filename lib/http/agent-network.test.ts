// The docker bundle's agent-facing daemons refuse what arrives on the egress network's side.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, createServer, type Server } from "node:net";
import { createLogger } from "../log.ts";
import { agentNetworkOnly, defaultRouteInterfaces, egressSideAddresses } from "./agent-network.ts";

// A bundle's table: eth0 is the egress network (default route), eth1 the internal one.
const ROUTES = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t01001CAC\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t00001CAC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
eth1\t00001BAC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
`;

test("egressSideAddresses(): every address of the interface holding the default route, none of the internal one's", () => {
  assert.deepEqual(defaultRouteInterfaces(ROUTES), ["eth0"]);
  const iface = (address: string, family: "IPv4" | "IPv6") => ({ address, family, netmask: "", mac: "", internal: false, cidr: null }) as never;
  const addrs = egressSideAddresses(ROUTES, { lo: [iface("127.0.0.1", "IPv4")], eth0: [iface("172.28.0.2", "IPv4"), iface("fe80::2", "IPv6")], eth1: [iface("172.27.0.2", "IPv4")] });
  assert.deepEqual([...addrs].sort(), ["172.28.0.2", "fe80::2"]);
  assert.deepEqual([...egressSideAddresses(ROUTES.split("\n").filter((l) => !l.includes("00000000\t01")).join("\n"), {})], [], "no default route, no egress side");
});

async function serve(t: { after(fn: () => unknown): void }, refused: Set<string>): Promise<{ server: Server; port: number; lines: string[] }> {
  const lines: string[] = [];
  const server = createServer((s) => s.end("served\n"));
  agentNetworkOnly(server, "test", createLogger({ write: (l) => void lines.push(l) }), refused);
  await new Promise<void>((r) => server.listen(0, "0.0.0.0", r));
  t.after(() => new Promise((r) => server.close(r)));
  return { server, port: (server.address() as { port: number }).port, lines };
}

function answer(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    const s = connect(port, host);
    s.on("data", (d) => (got += d));
    s.on("close", () => resolve(got));
    s.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" ? resolve(got) : reject(e)));
  });
}

test("agentNetworkOnly(): a connection on a refused local address is closed unanswered and said once; one on another address is served", async (t) => {
  // Both on this machine's loopback: 127.0.0.2 stands for the egress side.
  const { port, lines } = await serve(t, new Set(["127.0.0.2"]));
  assert.equal(await answer("127.0.0.2", port), "");
  assert.equal(await answer("127.0.0.2", port), "");
  assert.equal(await answer("127.0.0.1", port), "served\n", "control: the other side is served");
  assert.equal(lines.filter((l) => /refused a connection from 127\.0\.0\.1 on the egress network's side \(127\.0\.0\.2\)/.test(l)).length, 1, lines.join(""));
});

test("agentNetworkOnly(): with no default route the sides cannot be told apart, and the daemon does not start", () => {
  assert.throws(() => agentNetworkOnly(createServer(), "firewall", createLogger({ write: () => {} }), new Set()), /firewall --agent-network-only: no interface holds a default route/);
});
