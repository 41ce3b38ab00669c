// Manual benchmark (not a test): small-response keep-alive HTTPS through the firewall as
// a real process, against the same requests sent straight to the upstream and, when
// mitmdump is installed, through mitmdump (the kind of proxy the original chained).
//
//   node --import ./node_modules/tsx/dist/loader.mjs sidecar-image/firewall/bench.ts [requests] [connections]
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { log } from "../../lib/log.ts";
import { start, which } from "../../lib/proc.ts";
import { mintCa, mintLeaf } from "../../lib/tls/mod.ts";
import { httpsVia, policyOf, RawHttp, startUpstream, tlsOver } from "./test-harness.ts";

const TOTAL = Number(process.argv[2] ?? 4000);
const CONNS = Number(process.argv[3] ?? 8);
const repo = fileURLToPath(new URL("../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "bb-fw-bench-"));
const file = (name: string, text: string) => (writeFileSync(join(dir, name), text), join(dir, name));

const bottleCa = await mintCa({ commonName: "bench bottle CA" });
const upCa = await mintCa({ commonName: "bench upstream CA" });
const upstream = await startUpstream({ tls: await mintLeaf({ caCertPem: upCa.certPem, caKeyPem: upCa.keyPem, hosts: ["api.example.test"] }) });

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => net.connect(port, "127.0.0.1").once("connect", function (this: net.Socket) { this.destroy(); r(true); }).once("error", () => r(false)));
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`port ${port} never opened`);
}

async function measure(name: string, open: () => Promise<RawHttp>): Promise<void> {
  const clients = await Promise.all(Array.from({ length: CONNS }, open));
  for (const c of clients) await c.request("GET", "/warm", { host: "api.example.test" });
  const lat: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      for (let i = 0; i < TOTAL / CONNS; i++) {
        const s = performance.now();
        const r = await c.request("POST", "/v1/messages", { host: "api.example.test", "content-type": "application/json", authorization: "Bearer bb-placeholder" }, '{"model":"m","messages":[{"role":"user","content":"hi"}]}');
        if (r.status !== 200) throw new Error(`${name}: ${r.status} ${r.body}`);
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.floor(lat.length * p)]!.toFixed(2);
  log.raw(`${name.padEnd(10)} ${(lat.length / secs).toFixed(0).padStart(6)} req/s  p50 ${q(0.5)} ms  p99 ${q(0.99)} ms\n`);
  for (const c of clients) c.socket.destroy();
}

const children: ReturnType<typeof start>[] = [];
try {
  await measure("direct", async () => new RawHttp(await tlsOver(net.connect(upstream.port, "127.0.0.1"), "api.example.test", upCa.certPem)));

  const fw = start(["node", "--import", join(repo, "node_modules/tsx/dist/loader.mjs"), join(repo, "sidecar-image/firewall/main.ts"),
    "--listen", "127.0.0.1:0", "--policy", file("p.json", JSON.stringify(policyOf(["api.example.test"]))),
    "--ca-cert", file("ca.pem", bottleCa.certPem), "--ca-key", file("ca-key.pem", bottleCa.keyPem),
    "--upstream-ca", file("up.pem", upCa.certPem), "--resolve", `api.example.test=127.0.0.1:${upstream.port}`], { stdio: ["ignore", "ignore", "pipe"] });
  children.push(fw);
  const fwPort = await new Promise<number>((resolve) => {
    let text = "";
    fw.stderr!.on("data", (c: Buffer) => {
      const m = /listening on [^:]+:(\d+)/.exec((text += c));
      if (m) resolve(Number(m[1]));
    });
  });
  await measure("firewall", () => httpsVia(fwPort, "api.example.test", bottleCa.certPem));

  if (await which("mitmdump")) {
    const mPort = 20000 + Math.floor(Math.random() * 20000); // mitmdump cannot report a port it picked
    const confdir = join(dir, "mitm");
    children.push(start(["mitmdump", "-q", "--listen-host", "127.0.0.1", "--listen-port", String(mPort), "--set", `confdir=${confdir}`, "--ssl-insecure",
      "--set", `connection_strategy=lazy`, "--map-remote", `|//api.example.test/|//127.0.0.1:${upstream.port}/`,
      "--set", "keep_host_header=true"], { stdio: ["ignore", "ignore", "inherit"] }));
    await waitPort(mPort);
    const mitmCa = readFileSync(join(confdir, "mitmproxy-ca-cert.pem"), "utf8");
    await measure("mitmdump", () => httpsVia(mPort, "api.example.test", mitmCa)).catch((e) => log.raw(`mitmdump   failed: ${(e as Error).message}\n`));
  }
} finally {
  for (const c of children) c.kill("SIGTERM");
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
}
