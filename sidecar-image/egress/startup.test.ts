// egress's start is on the start flow's critical path (bb-provision waits until the
// bundle's daemons listen), and its first SecureContext, which loads node's root store, was
// a good part of it: egress listens first and makes its TLS agents at the first HTTPS
// upstream. A real process under node whose hook says when the first SecureContext is
// made; the first request still reaches a real TLS upstream through it.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { watch } from "../../lib/supervise/testdata/process.ts";
import { mintCa, mintLeaf } from "../../lib/tls/mod.ts";
import { REPO_ROOT } from "../../tests/support/daemon-process.ts";
import { SECURE_CONTEXT_MADE, watchedModuleRun } from "../../tests/support/module-load.ts";
import { plainVia } from "../../tests/support/raw-http.ts";
import { tempDir, writeTree } from "../../tests/support/tmp.ts";
import { startUpstream } from "../firewall/test-harness.ts";

const HOST = "api.example.test";

test("egress listens before it makes a SecureContext, and makes it for the first HTTPS upstream, which answers", async (t) => {
  const ca = await mintCa({ commonName: "test upstream CA" });
  const upstream = await startUpstream({ tls: await mintLeaf({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, hosts: [HOST] }) });
  t.after(() => upstream.close());
  const dir = await writeTree(await tempDir(t, "bb-egress-startup-"), { "routes.json": JSON.stringify({ version: 1, routes: [] }), "upstream-ca.pem": ca.certPem });
  const r = watchedModuleRun(`${REPO_ROOT}sidecar-image/egress/main.ts`, [
    "--listen", "127.0.0.1:0",
    "--routes", join(dir, "routes.json"),
    "--extra-ca", join(dir, "upstream-ca.pem"),
    "--resolve", `${HOST}=127.0.0.1:${upstream.port}`,
  ], {});
  const daemon = watch(r.argv, r.env);
  t.after(() => daemon.stop());
  const m = await daemon.waitFor(/listening on 127\.0\.0\.1:(\d+)/, 20_000);
  assert.ok(!daemon.lines.includes(SECURE_CONTEXT_MADE), `egress made a SecureContext before it listened:\n${daemon.lines.join("\n")}`);

  // As the firewall sends it: absolute form over plain HTTP; egress dials the upstream over
  // TLS and checks its certificate against --extra-ca.
  const c = await plainVia(Number(m[1]));
  t.after(() => c.socket.destroy());
  const res = await c.request("GET", `https://${HOST}/first`, { host: HOST });
  assert.equal(res.status, 200, res.body);
  assert.deepEqual(JSON.parse(res.body), { ok: true, path: "/first" });
  await daemon.waitFor(new RegExp(`^${SECURE_CONTEXT_MADE}$`), 20_000);
  assert.deepEqual(upstream.requests.map((q) => q.url), ["/first"]);
});
