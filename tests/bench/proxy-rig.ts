// Everything the proxy benchmark measures against, started as real processes on
// loopback: the fake HTTPS upstream (own test CA), a firewall dialing it directly, a
// firewall→egress chain with api.example.test routed through a token slot, and the
// baseline, two mitmdump processes chained the same way (each intercepting TLS, as
// egress and pipelock did in the original), and the floor, two bare TLS relay processes
// (lib/tls-relay-main.ts). Each row is a way to dial one keep-alive HTTPS session to the
// upstream.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { BbError } from "../../lib/errors.ts";
import { which } from "../../lib/proc.ts";
import type { EgressRoutes, FirewallPolicy } from "../../lib/sidecar-config.ts";
import { mintCa, mintLeaf } from "../../lib/tls/mod.ts";
import { type Dialer, directDialer, proxyDialer } from "./lib/dial.ts";
import { freePort, memoryOf, type Memory, ProcGroup, type Proc } from "./lib/procs.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const TSX_LOADER = join(REPO, "node_modules/tsx/dist/loader.mjs");
const HOST = "api.example.test";

export type RowId = "direct" | "relay" | "firewall" | "chain" | "mitmdump";
const ROWS: readonly { id: RowId; label: string }[] = [
  { id: "direct", label: "direct" },
  { id: "relay", label: "TLS relay floor" },
  { id: "firewall", label: "firewall" },
  { id: "chain", label: "firewall→egress" },
  { id: "mitmdump", label: "mitmdump chain" },
];

export interface Row {
  id: RowId;
  label: string;
  dial: Dialer;
  /** The Authorization the upstream saw: only the egress row gets the real one. */
  credential: "injected" | "absent";
  /** The proxy processes this row goes through (none for direct), for CPU accounting. */
  pids: number[];
}

export type DaemonMode = "auto" | "dist" | "source";

interface RigOptions {
  daemons: DaemonMode;
  mitmdump: boolean;
  signal?: AbortSignal;
}

export interface ProcMemory {
  name: string;
  /** Undefined where /proc is not available. */
  memory?: Memory;
}

export interface Rig {
  /** "dist" (the tsup bundles that ship) or "source" (main.ts through tsx). */
  daemons: "dist" | "source";
  /** A note for people when the bundles look older than their sources. */
  staleNote?: string;
  rows: Row[];
  skipped: { id: RowId; label: string; reason: string }[];
  /** Idle memory right after start, per proxy process. */
  idle: ProcMemory[];
  /** Memory now (VmHWM is the peak so far) of the same processes. */
  memoryNow(): Promise<ProcMemory[]>;
  close(): Promise<void>;
}

const labelOf = (id: RowId) => ROWS.find((r) => r.id === id)!.label;

/** The newest mtime (ms) of the non-test .ts files below `dir`. */
async function newestSource(dir: string): Promise<number> {
  let newest = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory() && e.name !== "testdata") newest = Math.max(newest, await newestSource(path));
    else if (e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")) newest = Math.max(newest, (await stat(path)).mtimeMs);
  }
  return newest;
}

async function pickDaemons(mode: DaemonMode): Promise<{ daemons: "dist" | "source"; staleNote?: string }> {
  const bundles = ["firewall", "egress"].map((n) => join(REPO, "dist/sidecar", `${n}.js`));
  const present = bundles.every((b) => existsSync(b));
  if (mode === "dist" && !present) throw new BbError("USAGE", "--daemons dist: dist/sidecar/firewall.js or egress.js is missing; run `just build` first");
  if (mode === "source" || !present) return { daemons: "source" };
  const built = Math.min(...(await Promise.all(bundles.map(async (b) => (await stat(b)).mtimeMs))));
  const sources = Math.max(
    ...(await Promise.all(["sidecar-image/firewall", "sidecar-image/egress", "lib"].map((d) => newestSource(join(REPO, d))))),
  );
  const staleNote = sources > built ? "dist/sidecar bundles are older than their sources; run `just build` to measure the current code" : undefined;
  return { daemons: "dist", staleNote };
}

/** BB_BENCH_CPU_PROF=DIR writes a V8 CPU profile per proxy process (daemons and relay
 * hops) there; --cpu-prof is refused in NODE_OPTIONS. */
function cpuProfFlags(): string[] {
  return process.env.BB_BENCH_CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir", process.env.BB_BENCH_CPU_PROF] : [];
}

function daemonArgv(daemons: "dist" | "source", name: "firewall" | "egress", args: string[]): string[] {
  const prof = cpuProfFlags();
  return daemons === "dist"
    ? ["node", ...prof, join(REPO, "dist/sidecar", `${name}.js`), ...args]
    : ["node", ...prof, "--import", TSX_LOADER, join(REPO, "sidecar-image", name, "main.ts"), ...args];
}

export async function startRig(o: RigOptions): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), "bb-bench-proxy-"));
  const procs = new ProcGroup(o.signal);
  const close = async () => {
    await procs.stopAll();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    return { ...(await assemble(o, dir, procs)), close };
  } catch (e) {
    await close();
    throw e;
  }
}

async function assemble(o: RigOptions, dir: string, procs: ProcGroup): Promise<Omit<Rig, "close">> {
  const file = async (name: string, text: string) => {
    await writeFile(join(dir, name), text);
    return join(dir, name);
  };
  const { daemons, staleNote } = await pickDaemons(o.daemons);
  // Why the mitmdump row is left out, or null when it runs.
  const mitmSkip = o.mitmdump ? ((await which("mitmdump")) ? null : "mitmdump is not on PATH (Debian: apt-get install mitmproxy)") : "left out by --no-mitmdump";

  const bottleCa = await mintCa({ commonName: "bench bottle CA" });
  const upCa = await mintCa({ commonName: "bench upstream CA" });
  const leaf = await mintLeaf({ caCertPem: upCa.certPem, caKeyPem: upCa.keyPem, hosts: [HOST] });
  const token = `bench-real-${randomBytes(8).toString("hex")}`;
  const upCaFile = await file("upstream-ca.pem", upCa.certPem);
  const caArgs = ["--ca-cert", await file("bottle-ca.pem", bottleCa.certPem), "--ca-key", await file("bottle-ca-key.pem", bottleCa.keyPem)];
  const policy = (routed: boolean): FirewallPolicy => ({
    version: 1,
    slug: "bench",
    hosts: [{ host: HOST, tlsPassthrough: false, routed }],
    // A sensitive value in the policy so DLP does the work it does in a real bottle.
    dlp: { disabled: [], sensitive: [{ name: "BENCH_SECRET", slot: "BB_SENSITIVE_0" }] },
  });
  const routes: EgressRoutes = { version: 1, routes: [{ host: HOST, auth: "bearer", header: null, slot: "EGRESS_TOKEN_0" }] };
  const sensitiveEnv = { BB_SENSITIVE_0: `bench-sensitive-${randomBytes(8).toString("hex")}` };

  const upstream = procs.spawn("upstream", [
    "node", "--import", TSX_LOADER, join(REPO, "tests/bench/lib/upstream-main.ts"),
    "--cert", await file("upstream.pem", leaf.certPem), "--key", await file("upstream-key.pem", leaf.keyPem), "--authorization", `Bearer ${token}`,
  ]);
  const upPort = await procs.listening(upstream);
  const resolve = `${HOST}=127.0.0.1:${upPort}`;

  const named: Proc[] = [];
  const daemon = async (name: string, argv: string[], env: Record<string, string>) => {
    const p = procs.spawn(name, argv, env);
    named.push(p);
    return procs.listening(p);
  };
  const pidsOf = (...names: string[]) => names.map((n) => named.find((p) => p.name === n)!.pid);
  // The daemons trust the upstream's CA through NODE_EXTRA_CA_CERTS, not --extra-ca /
  // --upstream-ca: a real upstream is trusted through the system store, and that default
  // code path is the one a bottle runs (the flags are for bottles with an upstream CA).
  const trustUpstream = { NODE_EXTRA_CA_CERTS: upCaFile };
  const egress = daemon("egress", daemonArgv(daemons, "egress", [
    "--listen", "127.0.0.1:0", "--routes", await file("routes.json", JSON.stringify(routes)), "--resolve", resolve,
  ]), { ...trustUpstream, EGRESS_TOKEN_0: token });
  const alone = daemon("firewall (alone)", daemonArgv(daemons, "firewall", [
    "--listen", "127.0.0.1:0", "--policy", await file("policy-alone.json", JSON.stringify(policy(false))), ...caArgs, "--resolve", resolve,
  ]), { ...trustUpstream, ...sensitiveEnv });
  const chainPolicy = await file("policy-chain.json", JSON.stringify(policy(true)));
  const chain = egress.then((egressPort) =>
    daemon("firewall (→egress)", daemonArgv(daemons, "firewall", [
      "--listen", "127.0.0.1:0", "--policy", chainPolicy, ...caArgs, "--next-hop", `127.0.0.1:${egressPort}`,
    ]), sensitiveEnv),
  );
  const mitm = mitmSkip === null ? startMitmChain(procs, named, dir, upCaFile) : Promise.resolve(null);
  const relayLeaf = await mintLeaf({ caCertPem: bottleCa.certPem, caKeyPem: bottleCa.keyPem, hosts: [HOST] });
  const relayArgv = (args: string[]) => ["node", ...cpuProfFlags(), "--import", TSX_LOADER, join(REPO, "tests/bench/lib/tls-relay-main.ts"), ...args];
  const relay = daemon("relay back", relayArgv(["back", "--upstream", `127.0.0.1:${upPort}`, "--servername", HOST]), trustUpstream).then(async (backPort) =>
    daemon("relay front", relayArgv([
      "front", "--cert", await file("relay.pem", relayLeaf.certPem), "--key", await file("relay-key.pem", relayLeaf.keyPem), "--next", `127.0.0.1:${backPort}`,
    ]), {}),
  );
  const [alonePort, chainPort, mitmChain, relayPort] = await Promise.all([alone, chain, mitm, relay, egress]);

  const target = { servername: HOST, ca: bottleCa.certPem };
  const rows: Row[] = [
    { id: "direct", label: labelOf("direct"), dial: directDialer(upPort, { servername: HOST, ca: upCa.certPem }), credential: "absent", pids: [] },
    { id: "relay", label: labelOf("relay"), dial: proxyDialer(relayPort, `${HOST}:443`, target), credential: "absent", pids: pidsOf("relay front", "relay back") },
    { id: "firewall", label: labelOf("firewall"), dial: proxyDialer(alonePort, `${HOST}:443`, target), credential: "absent", pids: pidsOf("firewall (alone)") },
    { id: "chain", label: labelOf("chain"), dial: proxyDialer(chainPort, `${HOST}:443`, target), credential: "injected", pids: pidsOf("firewall (→egress)", "egress") },
  ];
  // mitmdump has no --resolve: the client names the upstream by address in CONNECT and
  // by name in SNI and Host, which is all the certificate checks look at.
  if (mitmChain) rows.push({ id: "mitmdump", label: labelOf("mitmdump"), dial: proxyDialer(mitmChain.port, `127.0.0.1:${upPort}`, { servername: HOST, ca: mitmChain.ca }), credential: "absent", pids: pidsOf("mitmdump 1", "mitmdump 2") });
  // Started concurrently, so listed in a fixed order rather than the order they came up.
  const order = ["firewall (alone)", "firewall (→egress)", "egress", "mitmdump 1", "mitmdump 2", "relay front", "relay back"];
  named.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  const memoryNow = async () => Promise.all(named.map(async (p) => ({ name: p.name, memory: await memoryOf(p.pid) })));
  return {
    daemons,
    staleNote,
    rows,
    skipped: mitmSkip === null ? [] : [{ id: "mitmdump", label: labelOf("mitmdump"), reason: mitmSkip }],
    idle: await memoryNow(),
    memoryNow,
  };
}

/**
 * Two mitmdump processes mirroring firewall→egress: the first intercepts the client's TLS
 * and forwards to the second (upstream mode), which intercepts again and dials the upstream.
 * Each trusts exactly the CA of the hop after it and the client trusts the first one's, so
 * a response that verifies at every hop went through both.
 */
async function startMitmChain(procs: ProcGroup, named: Proc[], dir: string, upCaFile: string): Promise<{ port: number; ca: string }> {
  const mitm = async (name: string, confdir: string, trust: string, extra: string[]) => {
    const port = await freePort();
    // -q: no per-flow log lines, which would cost mitmdump more than the proxying.
    const p = procs.spawn(name, [
      "mitmdump", "-q", "--listen-host", "127.0.0.1", "--listen-port", String(port),
      "--set", `confdir=${confdir}`, "--set", `ssl_verify_upstream_trusted_ca=${trust}`, ...extra,
    ]);
    named.push(p);
    await procs.accepting(p, port);
    return port;
  };
  const second = await mitm("mitmdump 2", join(dir, "mitm2"), upCaFile, []);
  const secondCa = join(dir, "mitm2", "mitmproxy-ca-cert.pem");
  const first = await mitm("mitmdump 1", join(dir, "mitm1"), secondCa, ["--mode", `upstream:http://127.0.0.1:${second}`]);
  return { port: first, ca: await readFile(join(dir, "mitm1", "mitmproxy-ca-cert.pem"), "utf8") };
}
