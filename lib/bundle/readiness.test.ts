import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import net from "node:net";
import { run } from "../proc.ts";
import { crashLooping, listeningPorts, probeScript } from "./readiness.ts";

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

test("the probe waits in place until every port listens and returns then, not at the end of its wait", async (t) => {
  const servers = [net.createServer(), net.createServer()];
  t.after(() => servers.forEach((s) => s.close()));
  // Two ports that are free now: bound, noted and closed, then listened on again later.
  const ports: number[] = [];
  for (const s of servers) {
    await new Promise<void>((r) => s.listen(0, "0.0.0.0", r));
    ports.push((s.address() as net.AddressInfo).port);
    await new Promise((r) => s.close(r));
  }
  const t0 = Date.now();
  const probing = run(["sh", "-c", probeScript(ports, 60_000)]);
  setTimeout(() => servers.forEach((s, i) => s.listen(ports[i], "0.0.0.0")), 300);
  const r = await probing;
  const waited = Date.now() - t0;
  for (const p of ports) assert.ok(listeningPorts(r.stdout).has(p), `port ${p} not in the probe's output`);
  assert.ok(waited >= 250 && waited < 30_000, `the probe returned after ${waited} ms: before the ports listened, or only at the end of its wait`);
  // With nothing to wait for it reads the files once.
  const none = await run(["sh", "-c", probeScript([ports[0]!], 0)]);
  assert.ok(listeningPorts(none.stdout).has(ports[0]!));
});

test("crashLooping() names the first missing daemon init has seen exit three times, and ignores the rest", () => {
  const exit = (name: string, n: number) => Array.from({ length: n }, (_, i) => `init | ${name} exited (code 3) after 0.${i}s; restarting in ${500 * 2 ** i}ms`);
  const text = [...exit("firewall", 3), ...exit("supervise", 2), "firewall | error: Cannot read policy", "init | egress stopped for restart (SIGTERM)", ...exit("egress", 5)].join("\n");
  assert.deepEqual(crashLooping(text, ["supervise", "firewall"]), { name: "firewall", exits: 3 });
  assert.equal(crashLooping(text, ["supervise"]), null, "two exits are not yet a loop");
  assert.equal(crashLooping(text, ["git-gate"]), null);
  assert.deepEqual(crashLooping(text, ["egress"]), { name: "egress", exits: 5 });
});
