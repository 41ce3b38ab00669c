// checkCa, node's own crypto (in both runtimes): what the firewall refuses at startup.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { test } from "node:test";
import { isBbError } from "../errors.ts";
import { checkCa, mintCa, mintLeaf } from "./mod.ts";

const ca = await mintCa({ commonName: "test CA" });
const refused = (re: RegExp) => (e: unknown) => isBbError(e) && e.code === "TLS" && re.test(e.message);

test("checkCa() passes a fresh CA and returns its key as PKCS#8 DER", () => {
  const der = checkCa(ca);
  assert.ok(der.length > 100);
  assert.equal(Buffer.from(der).toString("base64"), ca.keyPem.replace(/-----[^-]+-----|\s/g, ""));
});

test("checkCa() refuses a key that is not the certificate's", async () => {
  const other = await mintCa({ commonName: "other CA" });
  assert.throws(() => checkCa({ certPem: ca.certPem, keyPem: other.keyPem }), refused(/^Cannot load CA: certificate and key do not match$/));
});

test("checkCa() refuses a CA outside its validity: expired, or not yet valid", async () => {
  const expired = await mintCa({ commonName: "expired CA", days: -0.5 });
  assert.throws(() => checkCa(expired), refused(/^Cannot load CA: the certificate is valid from .+ to .+, not now/));
  assert.throws(() => checkCa(ca, Date.now() - 2 * 86_400_000), refused(/not now/)); // mintCa backdates by one day only
});

test("checkCa() refuses a leaf given as the CA, and PEM that is not a certificate", async () => {
  const leaf = await mintLeaf({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, hosts: ["leaf.test"] });
  assert.throws(() => checkCa(leaf), refused(/^Cannot load CA: the certificate is not a CA/));
  assert.throws(() => checkCa({ certPem: "junk", keyPem: ca.keyPem }), refused(/^Cannot load CA: /));
});
