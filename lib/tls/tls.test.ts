import assert from "node:assert/strict";
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import net, { type AddressInfo } from "node:net";
import { test } from "node:test";
import tls from "node:tls";
import { skipWhen } from "../../tests/support/skip.ts";
import { isBbError } from "../errors.ts";
import { clientContext, createLeafIssuer, mintCa, mintLeaf } from "./mod.ts";

const ca = await mintCa({ commonName: "bot-bottle test CA" });

/** Handshake with a TLS server choosing its context by SNI (or by the address without
 * SNI); resolves to the peer certificate a client trusting only the CA verified. */
async function handshake(opts: { context: (servername: string) => Promise<tls.SecureContext>; servername?: string; onSecure?: (s: tls.TLSSocket) => void }) {
  const fallback = await opts.context("127.0.0.1");
  const server = net.createServer((socket) => {
    const s = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: fallback,
      // Deno's client sends an empty SNI for IP literals; treat it as none.
      SNICallback: (name, cb) => void (name ? opts.context(name) : Promise.resolve(fallback)).then((c) => cb(null, c), cb),
    });
    s.on("secure", () => s.end());
    s.on("error", () => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    return await new Promise<tls.PeerCertificate>((resolve, reject) => {
      const s = tls.connect({ host: "127.0.0.1", port: (server.address() as AddressInfo).port, servername: opts.servername, ca: ca.certPem }, () => {
        opts.onSecure?.(s);
        resolve(s.getPeerCertificate());
        s.end();
      });
      s.on("error", reject);
    });
  } finally {
    server.close();
  }
}

test("mintCa() makes a self-signed ECDSA P-256 CA certificate with its PKCS#8 key", () => {
  const cert = new X509Certificate(ca.certPem);
  assert.equal(cert.ca, true);
  assert.match(cert.subject, /CN=bot-bottle test CA/);
  assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
  assert.ok(cert.verify(cert.publicKey));
  assert.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----/);
});

test("mintLeaf() makes a server certificate for fixed hosts that a client trusting the CA accepts", async () => {
  const leaf = await mintLeaf({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, hosts: ["api.example.test", "127.0.0.1"] });
  const ctx = tls.createSecureContext({ cert: leaf.certPem, key: leaf.keyPem });
  const peer = await handshake({ context: async () => ctx, servername: "api.example.test" });
  assert.match(peer.subjectaltname ?? "", /DNS:api\.example\.test/);
  assert.match(peer.subjectaltname ?? "", /IP Address:127\.0\.0\.1/);
  assert.equal(new X509Certificate(leaf.certPem).checkIssued(new X509Certificate(ca.certPem)), true);
});

test("createLeafIssuer() mints a leaf per SNI host and an IP SAN for an IP literal", async () => {
  const issuer = createLeafIssuer({ caCertPem: ca.certPem, caKeyPem: ca.keyPem });
  const byName = await handshake({ context: (h) => issuer.contextFor(h), servername: "Deep.Sub.Example.TEST" });
  assert.equal(byName.subjectaltname, "DNS:deep.sub.example.test");
  const byIp = await handshake({ context: (h) => issuer.contextFor(h) });
  assert.equal(byIp.subjectaltname, "IP Address:127.0.0.1");
});

test("leaves choose AES-128-GCM even when the client lists AES-256 first; clientContext() offers it first", skipWhen("Deno" in globalThis && "Deno's node:tls ignores `ciphers` and `honorCipherOrder`; the daemons ship on node", "cipher order"), async () => {
  const issuer = createLeafIssuer({ caCertPem: ca.certPem, caKeyPem: ca.keyPem });
  let chosen = "";
  // node's default client order puts TLS_AES_256_GCM_SHA384 first: the leaf's order wins.
  await handshake({ context: (h) => issuer.contextFor(h), servername: "a.test", onSecure: (s) => (chosen = s.getCipher().name) });
  assert.equal(chosen, "TLS_AES_128_GCM_SHA256");

  // A server that follows the client's order (node servers default to their own) gets AES-128.
  const leaf = await mintLeaf({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, hosts: ["127.0.0.1"] });
  const server = tls.createServer({ cert: leaf.certPem, key: leaf.keyPem, honorCipherOrder: false }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    chosen = await new Promise<string>((resolve, reject) => {
      const port = (server.address() as AddressInfo).port;
      const s = tls.connect({ host: "127.0.0.1", port, secureContext: clientContext([ca.certPem]) }, () => {
        resolve(s.getCipher().name);
        s.end();
      });
      s.on("error", reject);
    });
    assert.equal(chosen, "TLS_AES_128_GCM_SHA256");
  } finally {
    server.close();
  }
});

test("createLeafIssuer() caches per host, shares concurrent mints and evicts the least recently used", async () => {
  const issuer = createLeafIssuer({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, maxEntries: 2 });
  const [a1, a2] = [issuer.contextFor("a.test"), issuer.contextFor("A.test.")];
  assert.equal(a1, a2, "concurrent requests for one host share one mint");
  const a = await a1;
  const b = await issuer.contextFor("b.test");
  assert.equal(await issuer.contextFor("a.test"), a, "a hit returns the cached context (and refreshes a.test)");
  await issuer.contextFor("c.test"); // over the bound of 2: evicts b.test, the least recently used
  assert.equal(await issuer.contextFor("a.test"), a);
  assert.notEqual(await issuer.contextFor("b.test"), b, "b.test was evicted and minted again");
});

test("createLeafIssuer() rejects with a TLS error when the key does not belong to the CA", async () => {
  const other = await mintCa({ commonName: "other" });
  const issuer = createLeafIssuer({ caCertPem: ca.certPem, caKeyPem: other.keyPem });
  await assert.rejects(issuer.contextFor("a.test"), (e) => isBbError(e) && e.code === "TLS" && /do not match/.test(e.message));
  const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  await assert.rejects(mintLeaf({ caCertPem: ca.certPem, caKeyPem: rsa, hosts: ["a.test"] }), /expected EC P-256/);
});

test("createLeafIssuer() refuses to mint for a name no DNS name can be: a wildcard, an empty or 64-character label, over 253 characters", async () => {
  const issuer = createLeafIssuer({ caCertPem: ca.certPem, caKeyPem: ca.keyPem });
  for (const host of ["*.example.test", "a*b.example.test", ".example.test", "a..example.test", `${"a".repeat(64)}.test`, `${"a.".repeat(127)}test`, "a b.test"]) {
    await assert.rejects(issuer.contextFor(host), (e) => isBbError(e) && e.code === "TLS" && /not a host name or an IP address/.test(e.message), host);
  }
  assert.ok(await issuer.contextFor(`${"a".repeat(63)}.under_score.x-y.test`));
  assert.ok(await issuer.contextFor("[::1]"));
});
