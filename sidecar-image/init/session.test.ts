// The property the firewall-only restart exists for: init runs the real firewall and the
// real supervise daemon; init's SIGUSR1 restarts the firewall alone (what bb-supervise
// falls back to when a bundle's firewall does not confirm a live re-read) while the
// agent's MCP session, opened before, keeps working, and the host it asked for, refused by
// the firewall before the approval, is reachable through it after.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { approveRequest } from "../../lib/supervise/decide.ts";
import { listRequests } from "../../lib/supervise/queue.ts";
import { makeTestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { watch } from "../../lib/supervise/testdata/process.ts";
import { tsArgv } from "../../lib/supervise/testdata/ts-argv.ts";
import { mintCa } from "../../lib/tls/mod.ts";
import { freePort } from "../../tests/support/ports.ts";
import { connectTunnel, tlsOver } from "../../tests/support/raw-http.ts";

test("an approval with init's SIGUSR1 restarts only the firewall: the requested host, refused before, opens through it, and the agent's MCP session keeps working on the same session id", async () => {
  const bottle = await makeTestBottle();
  const ca = await mintCa({ commonName: "session test CA" });
  const caCert = join(bottle.plan.files.dir, "ca.pem");
  const caKey = join(bottle.plan.files.dir, "ca-key.pem");
  await writeFile(caCert, ca.certPem);
  await writeFile(caKey, ca.keyPem, { mode: 0o600 });
  const fwPort = await freePort();
  const argv = {
    firewall: tsArgv("sidecar-image/firewall/main.ts", ["--listen", `127.0.0.1:${fwPort}`, "--policy", bottle.policyFile, "--ca-cert", caCert, "--ca-key", caKey]),
    supervise: tsArgv("sidecar-image/supervise/main.ts", ["--listen", "127.0.0.1:0", "--queue", bottle.queueDir, "--slug", bottle.slug, "--wait", "15", "--poll", "100", "--firewall", `127.0.0.1:${fwPort}`]),
  };
  const init = watch(
    tsArgv("sidecar-image/init/main.ts", ["--services", "firewall,supervise", "--argv-json", JSON.stringify(argv), "--stop-timeout", "5000"]),
    { PATH: process.env.PATH, HOME: process.env.HOME, BB_SLUG: bottle.slug },
    true,
  );
  const client = new Client({ name: "agent", version: "1.0.0" });
  try {
    const pid = async (name: string, from = 0) => Number((await init.waitFor(new RegExp(`^init \\| started ${name} \\(pid (\\d+)\\)$`), 20_000, from))[1]);
    const firewallBefore = await pid("firewall");
    const supervisePid = await pid("supervise");
    await init.waitFor(/^firewall \| .*listening on 127\.0\.0\.1:\d+ \(1 hosts/, 20_000);
    const url = (await init.waitFor(/^supervise \| listening on (http:\S+)/, 20_000))[1]!;

    const transport = new StreamableHTTPClientTransport(new URL(url));
    await client.connect(transport);
    const sessionId = transport.sessionId;
    assert.ok(sessionId);

    // Before the approval the firewall refuses the host outright.
    const refused = await connectTunnel(fwPort, "new.example.test:443");
    assert.ok("refused" in refused, "the firewall let new.example.test through before any approval");
    assert.equal(refused.refused.status, 403, refused.refused.body);
    assert.match(refused.refused.body, /new\.example\.test/);

    const mark = init.lines.length;
    const call = client.callTool({ name: "request_host_access", arguments: { host: "new.example.test", reason: "fetch fixtures" } }) as Promise<CallToolResult>;
    let id: string | undefined;
    while (!id) {
      id = (await listRequests(bottle.queueDir)).find((r) => r.host === "new.example.test")?.id;
      await sleep(50);
    }
    await approveRequest({ queueDir: bottle.queueDir, policyFile: bottle.policyFile, bottleDir: bottle.plan.files.dir, reloadFirewall: async () => init.signal("SIGUSR1") }, id);

    const approved = await call;
    assert.equal((approved.structuredContent as { status: string }).status, "approved", JSON.stringify(approved));
    const firewallAfter = await pid("firewall", mark);
    assert.notEqual(firewallAfter, firewallBefore, "the firewall is a new process");
    await init.waitFor(/^firewall \| .*listening on 127\.0\.0\.1:\d+ \(2 hosts/, 20_000, mark);
    assert.equal(init.lines.slice(mark).filter((l) => l.startsWith("init | started supervise")).length, 0, "supervise was not restarted");
    assert.ok(init.lines.includes(`init | started supervise (pid ${supervisePid})`));

    // After it, the restarted firewall opens the tunnel and speaks TLS for the host with the bottle CA.
    const opened = await connectTunnel(fwPort, "new.example.test:443");
    assert.ok("socket" in opened, "refused" in opened ? `${opened.refused.status} ${opened.refused.body}` : "");
    const tls = await tlsOver(opened.socket, "new.example.test", ca.certPem);
    assert.ok(tls.authorized);
    tls.destroy();

    // The same session, after the restart.
    const checked = (await client.callTool({ name: "check_request", arguments: { id } })) as CallToolResult;
    assert.deepEqual(checked.structuredContent, { id, kind: "host", status: "approved", host: "new.example.test", answer: null });
    assert.equal(transport.sessionId, sessionId);
  } finally {
    await client.close();
    assert.equal(await init.stop(15_000), 0, init.lines.join("\n"));
    await bottle.remove();
  }
});
