// Test helper: the upstreams a proxy's deadline test (egress's, the firewall's) runs
// against, on 127.0.0.1: quiet.test (takes requests and says nothing, quiet-upstream.ts),
// slow.test and slow-tls.test (answer slowly, the latter over TLS with a leaf from a CA of
// its own) and stuck.test (never accepts a connection, unaccepting-listener.ts); and a
// folder for the proxy's files, removed with them.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mintCa, mintLeaf } from "../../lib/tls/mod.ts";
import { plainVia } from "./raw-http.ts";
import { startQuietUpstream, startSlowUpstream, type QuietUpstream } from "./quiet-upstream.ts";
import { startUnacceptingListener } from "./unaccepting-listener.ts";

/** The headers of a WebSocket upgrade request. */
export const WS_UPGRADE = { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13" };

export interface DeadlineUpstreams {
  quiet: QuietUpstream;
  /** A file holding the CA (PEM) slow-tls.test's certificate is signed by: the proxy must trust it. */
  caFile: string;
  /** The folder for the proxy's files, removed with the upstreams. */
  dir: string;
  /** --resolve=NAME=127.0.0.1:PORT for each of them, and for `alsoStuck` names at stuck.test's port. */
  resolveFlags(alsoStuck?: string[]): string[];
  /**
   * On one connection to the proxy at `proxyPort` (its head deadline 2 s), a request
   * quiet.test answers and then one it holds: asserts the second is answered 504, went out
   * once, on the first one's pooled connection (never again on a fresh one), and that
   * connection was closed.
   */
  checkPooledHeadTimeout(proxyPort: number): Promise<void>;
  close(): Promise<void>;
}

export async function startDeadlineUpstreams(): Promise<DeadlineUpstreams> {
  const dir = await mkdtemp(join(tmpdir(), "bb-deadlines-"));
  const file = async (name: string, text: string) => {
    await writeFile(join(dir, name), text);
    return join(dir, name);
  };
  const ca = await mintCa({ commonName: "deadline test upstream CA" });
  const quiet = await startQuietUpstream();
  const slow = await startSlowUpstream();
  const slowTls = await startSlowUpstream(await mintLeaf({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, hosts: ["slow-tls.test"] }));
  const stuck = await startUnacceptingListener();
  const ports: Record<string, number> = { "quiet.test": quiet.port, "slow.test": slow.port, "slow-tls.test": slowTls.port, "stuck.test": stuck.port };
  return {
    quiet,
    caFile: await file("upstream-ca.pem", ca.certPem),
    dir,
    resolveFlags: (alsoStuck = []) => [...Object.entries(ports), ...alsoStuck.map((name) => [name, stuck.port] as const)].map(([name, port]) => `--resolve=${name}=127.0.0.1:${port}`),
    async checkPooledHeadTimeout(proxyPort) {
      const conn = await plainVia(proxyPort);
      try {
        assert.equal((await conn.proxyRequest("GET", "http://quiet.test/answer-first")).body, "ok");
        const res = await conn.proxyRequest("GET", "http://quiet.test/hold-pooled");
        assert.equal(res.status, 504, res.body);
        assert.match(res.body, /sent no response head within 2 s/);
      } finally {
        conn.socket.destroy();
      }
      const pooled = quiet.arrivedOnce("GET /hold-pooled");
      assert.equal(pooled, quiet.arrivedOnce("GET /answer-first"), "the second request went out on the first one's connection");
      await quiet.closed(pooled);
    },
    async close() {
      await stuck.close();
      await slow.close();
      await slowTls.close();
      await quiet.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
