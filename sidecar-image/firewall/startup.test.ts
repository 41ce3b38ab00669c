// The firewall's start is on the start flow's critical path (bb-provision waits until the
// bundle's daemons listen), and @peculiar/x509 (with tsyringe and asn1) was the larger part
// of it: the firewall checks its CA with node's own crypto, listens, and loads the minting
// code at the first intercepted request. A real process under node, whose module hooks say
// when @peculiar/x509 is loaded; the request goes through it end to end over real TLS.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { run } from "../../lib/proc.ts";
import { watch } from "../../lib/supervise/testdata/process.ts";
import { mintCa, mintLeaf, type PemPair } from "../../lib/tls/mod.ts";
import { REPO_ROOT } from "../../tests/support/daemon-process.ts";
import { loadedLine, SECURE_CONTEXT_MADE, watchedModuleRun } from "../../tests/support/module-load.ts";
import { httpsVia } from "../../tests/support/raw-http.ts";
import { tempDir, writeTree } from "../../tests/support/tmp.ts";
import { policyOf, startUpstream } from "./test-harness.ts";

const MAIN = `${REPO_ROOT}sidecar-image/firewall/main.ts`;
const WATCHED = { "@peculiar/x509": "/@peculiar/x509/" };
const LOADED = loadedLine("@peculiar/x509");
const HOST = "api.example.test";

const bottleCa = await mintCa({ commonName: "test bottle CA" });
const upstreamCa = await mintCa({ commonName: "test upstream CA" });

/** The firewall's flags with this CA pair (and the fake upstream, when there is one),
 * their files written to a temp dir of the test's. */
async function flags(t: TestContext, ca: PemPair, upstreamPort = 1): Promise<string[]> {
  const dir = await writeTree(await tempDir(t, "bb-firewall-startup-"), {
    "policy.json": JSON.stringify(policyOf([HOST])),
    "ca.pem": ca.certPem,
    "ca-key.pem": ca.keyPem,
    "upstream-ca.pem": upstreamCa.certPem,
  });
  return [
    "--listen", "127.0.0.1:0",
    "--policy", join(dir, "policy.json"),
    "--ca-cert", join(dir, "ca.pem"),
    "--ca-key", join(dir, "ca-key.pem"),
    "--upstream-ca", join(dir, "upstream-ca.pem"),
    "--resolve", `${HOST}=127.0.0.1:${upstreamPort}`,
  ];
}

test("the firewall listens before it loads @peculiar/x509, and loads it for the first intercepted request, which is answered", async (t) => {
  const upstream = await startUpstream({ tls: await mintLeaf({ caCertPem: upstreamCa.certPem, caKeyPem: upstreamCa.keyPem, hosts: [HOST] }) });
  t.after(() => upstream.close());
  const r = watchedModuleRun(MAIN, await flags(t, bottleCa, upstream.port), WATCHED);
  const daemon = watch(r.argv, r.env);
  t.after(() => daemon.stop());
  const m = await daemon.waitFor(/listening on 127\.0\.0\.1:(\d+)/, 20_000);
  assert.ok(!daemon.lines.includes(LOADED), `@peculiar/x509 was loaded before the firewall listened:\n${daemon.lines.join("\n")}`);
  // Nor is node's root store (the first SecureContext): the upstream agents and the first leaf make it.
  assert.ok(!daemon.lines.includes(SECURE_CONTEXT_MADE), `the firewall made a SecureContext before it listened:\n${daemon.lines.join("\n")}`);

  // The client checks the minted leaf against the bottle CA: real interception.
  const c = await httpsVia(Number(m[1]), HOST, bottleCa.certPem);
  t.after(() => c.socket.destroy());
  const res = await c.request("GET", "/first", { host: HOST });
  assert.equal(res.status, 200);
  assert.deepEqual(JSON.parse(res.body), { ok: true, path: "/first" });
  await daemon.waitFor(new RegExp(`^${LOADED}$`), 20_000);
  await daemon.waitFor(new RegExp(`^${SECURE_CONTEXT_MADE}$`), 20_000);
  assert.deepEqual(upstream.requests.map((q) => q.url), ["/first"]);
});

/** Start the firewall with this CA pair: it must exit 1 at once, before it listens and
 * without loading @peculiar/x509 (the check is node's own), with `message` on stderr. */
async function refusesAtStart(t: TestContext, ca: PemPair, message: RegExp): Promise<void> {
  const r = watchedModuleRun(MAIN, await flags(t, ca), WATCHED);
  const out = await run(r.argv, { env: r.env, expect: [1], timeoutMs: 20_000 });
  assert.match(out.stderr, message);
  assert.doesNotMatch(out.stderr, /listening on/);
  assert.ok(!out.stderr.includes(LOADED), `@peculiar/x509 was loaded to check the CA:\n${out.stderr}`);
}

test("a CA key that does not match its certificate is a startup error", async (t) => {
  const other = await mintCa({ commonName: "another CA" });
  await refusesAtStart(t, { certPem: bottleCa.certPem, keyPem: other.keyPem }, /Cannot load CA: certificate and key do not match/);
});

test("an expired CA is a startup error, not a handshake every client refuses", async (t) => {
  const expired = await mintCa({ commonName: "expired CA", days: -0.5 }); // valid from a day ago to 12 hours ago
  await refusesAtStart(t, expired, /Cannot load CA: the certificate is valid from .* to .*, not now/);
});

test("a leaf certificate given as the CA is a startup error", async (t) => {
  const leaf = await mintLeaf({ caCertPem: bottleCa.certPem, caKeyPem: bottleCa.keyPem, hosts: ["leaf.test"] });
  await refusesAtStart(t, leaf, /Cannot load CA: the certificate is not a CA/);
});

test("a CA file that is not a certificate is a startup error", async (t) => {
  await refusesAtStart(t, { certPem: "not a certificate\n", keyPem: bottleCa.keyPem }, /Cannot load CA: /);
});
