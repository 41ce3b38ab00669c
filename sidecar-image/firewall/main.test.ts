// The firewall as a real host process (node + tsx, as the bundle's supervisor would run
// the built file): flags, startup, blocking, logging, SIGHUP/SIGUSR1 reload, startup failure.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { run, start } from "../../lib/proc.ts";
import { mintCa, mintLeaf } from "../../lib/tls/mod.ts";
import { connectTunnel, httpsVia } from "../../tests/support/raw-http.ts";
import { policyOf, startUpstream } from "./test-harness.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = join(repo, "sidecar-image/firewall/main.ts");
const LOADER = join(repo, "node_modules/tsx/dist/loader.mjs");
const nodeArgv = (...flags: string[]) => ["node", "--import", LOADER, MAIN, ...flags];

const dir = mkdtempSync(join(tmpdir(), "bb-firewall-"));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const bottleCa = await mintCa({ commonName: "test bottle CA" });
const upstreamCa = await mintCa({ commonName: "test upstream CA" });
const HOSTS = ["api.example.test", "new.example.test"];
const upstream = await startUpstream({ tls: await mintLeaf({ caCertPem: upstreamCa.certPem, caKeyPem: upstreamCa.keyPem, hosts: HOSTS }) });
const SECRET = "correct-horse-battery-staple-42";
const startPolicy = JSON.stringify(policyOf(["api.example.test"], { sensitive: [{ name: "DB_PASSWORD", slot: "BB_SENSITIVE_0" }] }));
const policyFile = file("policy.json", startPolicy); // the reload test rewrites this one
const flags = [
  "--listen", "127.0.0.1:0",
  "--policy", policyFile,
  "--ca-cert", file("ca.pem", bottleCa.certPem),
  "--ca-key", file("ca-key.pem", bottleCa.keyPem),
  "--upstream-ca", file("upstream-ca.pem", upstreamCa.certPem),
  ...HOSTS.flatMap((h) => ["--resolve", `${h}=127.0.0.1:${upstream.port}`]),
];

/** Start the daemon; resolves once it logs its address. Stderr accumulates in `stderr()`. */
async function startDaemon(): Promise<{ child: ChildProcess; port: number; stderr: () => string; waitFor: (re: RegExp) => Promise<void> }> {
  const child = start(nodeArgv(...flags), { stdio: ["ignore", "ignore", "pipe"], env: { BB_SENSITIVE_0: SECRET } });
  let text = "";
  const waiters: (() => void)[] = [];
  child.stderr!.on("data", (c: Buffer) => {
    text += c.toString();
    for (const w of waiters.splice(0)) w();
  });
  const waitFor = async (re: RegExp) => {
    const deadline = Date.now() + 15_000;
    while (!re.test(text)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`never saw ${re}; stderr:\n${text}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  await waitFor(/listening on 127\.0\.0\.1:\d+/);
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(text)![1]);
  return { child, port, stderr: () => text, waitFor };
}

const daemon = await startDaemon();
// process.kill rather than child.kill: Deno's ChildProcess sends only the first signal.
const sigusr1 = () => process.kill(daemon.child.pid!, "SIGUSR1");
after(async () => {
  daemon.child.kill("SIGTERM");
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

test("the daemon forwards an allowed host and blocks an unlisted one, logging one line per block", async () => {
  const c = await httpsVia(daemon.port, "api.example.test", bottleCa.certPem);
  assert.equal((await c.request("GET", "/hello", { host: "api.example.test" })).status, 200);
  c.socket.destroy();
  const t = await connectTunnel(daemon.port, "evil.test:443");
  assert.ok("refused" in t);
  assert.equal(t.refused.status, 403);
  await daemon.waitFor(/blocked CONNECT evil\.test: host is not in this bottle's allowlist/);
});

test("the daemon blocks a sensitive env value from its slot and never logs it", async () => {
  const c = await httpsVia(daemon.port, "api.example.test", bottleCa.certPem);
  const res = await c.request("POST", "/login", { host: "api.example.test" }, JSON.stringify({ password: SECRET }));
  c.socket.destroy();
  assert.equal(res.status, 403);
  assert.match(res.body, /detector sensitive_env matched in body \(value of sensitive env DB_PASSWORD/);
  await daemon.waitFor(/blocked POST api\.example\.test: detector sensitive_env/);
  assert.ok(!daemon.stderr().includes(SECRET));
});

test("SIGHUP (or SIGUSR1) reloads the policy live: a newly added host becomes reachable, a connection opened before keeps working; a bad policy is refused and the old kept", async () => {
  const refused = await connectTunnel(daemon.port, "new.example.test:443");
  assert.ok("refused" in refused);
  const open = await httpsVia(daemon.port, "api.example.test", bottleCa.certPem);
  assert.equal((await open.request("GET", "/before", { host: "api.example.test" })).status, 200);

  writeFileSync(policyFile, JSON.stringify(policyOf(["api.example.test", "new.example.test"])));
  process.kill(daemon.child.pid!, "SIGHUP");
  await daemon.waitFor(/policy reloaded from .*policy\.json \(2 hosts\)/);
  assert.equal((await open.request("GET", "/after", { host: "api.example.test" })).status, 200, "the reload dropped an open connection");
  open.socket.destroy();
  const c = await httpsVia(daemon.port, "new.example.test", bottleCa.certPem);
  assert.equal((await c.request("GET", "/", { host: "new.example.test" })).status, 200);
  c.socket.destroy();

  writeFileSync(policyFile, JSON.stringify({ version: 1, hosts: "not a list" }));
  sigusr1();
  // An info line, as "policy reloaded" is: approve waits for either, and a flood of refusals
  // leaves warnings and errors out of the log (lib/log.ts), never info.
  await daemon.waitFor(/^firewall: policy reload refused, keeping the previous policy: .*policy\.json/m);
  const d = await httpsVia(daemon.port, "new.example.test", bottleCa.certPem);
  assert.equal((await d.request("GET", "/", { host: "new.example.test" })).status, 200, "the previous policy still applies");
  d.socket.destroy();
});

test("the daemon refuses to start with a CA key that does not match its certificate", async () => {
  const other = await mintCa({ commonName: "other" });
  const bad = flags.map((f) => (f.endsWith("ca-key.pem") ? file("other-key.pem", other.keyPem) : f === policyFile ? file("good.json", startPolicy) : f));
  const r = await run(nodeArgv(...bad), { expect: [1], timeoutMs: 20_000 });
  assert.match(r.stderr, /Cannot load CA: certificate and key do not match/);
});

test("a FIFO given as --ca-cert, --ca-key or --upstream-ca is refused at once, naming the flag and the file (reading it would wait for a writer forever)", async () => {
  const pipe = join(dir, "pipe.pem");
  await run(["mkfifo", pipe]);
  try {
    for (const flag of ["--ca-cert", "--ca-key", "--upstream-ca"]) {
      const given = flags.map((f, i) => (flags[i - 1] === flag ? pipe : f === policyFile ? file("good.json", startPolicy) : f));
      const r = await run(nodeArgv(...given), { expect: [1], timeoutMs: 20_000 });
      assert.match(r.stderr, new RegExp(`Cannot read ${flag} ${pipe}: it is a FIFO, not a regular file`), flag);
    }
  } finally {
    rmSync(pipe, { force: true });
  }
});

test("the daemon exits 2 with a usage error when a required flag is missing", async () => {
  const r = await run(nodeArgv("--listen", "127.0.0.1:0"), { expect: [2], timeoutMs: 20_000 });
  assert.match(r.stderr, /required option '--policy <file>' not specified/);
});

test("--ca-key-env: the key comes from that variable (the bundle's way), and intercepted TLS is signed with it; giving both flags or neither is a usage error", async () => {
  // The reload test leaves a bad policy in policyFile.
  const viaEnv = flags.flatMap((f, i) => (f === "--ca-key" ? ["--ca-key-env", "BB_CA_KEY"] : flags[i - 1] === "--ca-key" ? [] : f === policyFile ? [file("good.json", startPolicy)] : [f]));
  const child = start(nodeArgv(...viaEnv), { stdio: ["ignore", "ignore", "pipe"], env: { BB_CA_KEY: bottleCa.keyPem } });
  try {
    let text = "";
    child.stderr!.on("data", (c: Buffer) => void (text += c.toString()));
    const deadline = Date.now() + 15_000;
    while (!/listening on 127\.0\.0\.1:\d+/.test(text)) {
      if (Date.now() > deadline || child.exitCode !== null) assert.fail(`never listened; stderr:\n${text}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const c = await httpsVia(Number(/listening on 127\.0\.0\.1:(\d+)/.exec(text)![1]), "api.example.test", bottleCa.certPem);
    assert.equal((await c.request("GET", "/hello", { host: "api.example.test" })).status, 200);
    c.socket.destroy();
  } finally {
    child.kill("SIGTERM");
  }
  const both = await run(nodeArgv(...flags, "--ca-key-env", "BB_CA_KEY"), { expect: [2], timeoutMs: 20_000, env: { BB_CA_KEY: bottleCa.keyPem } });
  assert.match(both.stderr, /exactly one of --ca-key <file> and --ca-key-env <name>/);
  const unset = await run(nodeArgv(...viaEnv), { expect: [1], timeoutMs: 20_000, env: { BB_CA_KEY: "" } });
  assert.match(unset.stderr, /\$BB_CA_KEY \(--ca-key-env\) is not set or empty/);
});
