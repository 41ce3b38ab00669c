// Certificates, signatures and public keys an agent puts into an API call (a file's
// contents in a JSON string, a form field): the armour's line breaks arrive as "\n" or
// "\r\n" escapes, or as %0A, and the block must pass as it does in a plain file, while a
// private key in the same spelling never reaches the upstream. Real sockets on loopback
// and a fake upstream of the test's own that records what reaches it.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { createLogger } from "../../lib/log.ts";
import { mintCa } from "../../lib/tls/mod.ts";
import { plainVia } from "../../tests/support/raw-http.ts";
import { firewallPool, policyOf, startUpstream } from "./test-harness.ts";

const upstream = await startUpstream();
const resolve = new Map([["api.example.test", { host: "127.0.0.1", port: upstream.port }]]);
const startFirewall = firewallPool(
  { policy: policyOf(["api.example.test"]), ca: await mintCa({ commonName: "test bottle CA" }), resolve, log: createLogger({ level: "error" }) },
  [upstream],
);
const port = await startFirewall();

const corpus: { name: string; text: string }[] = JSON.parse(readFileSync(new URL("../../lib/dlp/testdata/negative.json", import.meta.url), "utf8"));
const sample = (prefix: string) => corpus.find((n) => n.name.startsWith(prefix))!.text;

/** The spellings of `text` a client sends: JSON with "\n" or "\r\n" escapes and "/" escaped
 * as "\/", and a form field (%0A). */
const spellings = (text: string): [string, string, string][] => [
  ["JSON", "application/json", JSON.stringify({ path: "f", content: text })],
  ["JSON \\r\\n", "application/json", JSON.stringify({ path: "f", content: text.replaceAll("\n", "\r\n") })],
  ["JSON \\/", "application/json", JSON.stringify({ path: "f", content: text }).replaceAll("/", "\\/")],
  ["form", "application/x-www-form-urlencoded", `path=f&content=${encodeURIComponent(text)}`],
];

test("a signature, certificate or public key inside a JSON string or a form field reaches the upstream", async () => {
  const c = await plainVia(port);
  for (const name of ["pgp signature", "ssh signature", "git commit object with gpgsig", "pgp public key block", "pem certificate"]) {
    for (const [how, type, body] of spellings(sample(name))) {
      const before = upstream.requests.length;
      const res = await c.proxyRequest("POST", "http://api.example.test/files", { "content-type": type }, body);
      assert.equal(res.status, 200, `${name} (${how}): ${res.body}`);
      assert.equal(upstream.requests.length, before + 1, `${name} (${how})`);
      assert.equal(upstream.requests.at(-1)!.body, body, `${name} (${how}) reached the upstream as sent`);
    }
  }
  c.socket.destroy();
});

test("a private key, random bytes wearing armour, or a token in an armour header line inside a JSON string or a form field is refused", async () => {
  const c = await plainVia(port);
  // A stand-in key body: random-looking base64, 64 columns, as PEM writes it.
  let seed = 75;
  const random = Buffer.from(Array.from({ length: 120 }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) >> 23)).toString("base64");
  const rows = random.replace(/.{64}/g, "$&\n");
  const cases: [string, string, RegExp][] = [
    ["private key", `-----BEGIN PRIVATE KEY-----\n${rows}\n-----END PRIVATE KEY-----\n`, /detector private_key matched in body/],
    ["random bytes in certificate armour", `-----BEGIN CERTIFICATE-----\n${rows}\n-----END CERTIFICATE-----\n`, /detector high_entropy matched in body/],
    ["random bytes in signature armour", `-----BEGIN PGP SIGNATURE-----\n\n${rows}\n=8L3u\n-----END PGP SIGNATURE-----\n`, /detector high_entropy matched in body/],
    // A genuine certificate does not spare what is written in a header line of its armour.
    ["a token in a genuine certificate's header line", sample("pem certificate").replace("-----\n", "-----\nComment: Xq7Lm2Pz9Rt4Vb8Nc1Kd6Fg3Hj5Wy0QsAeUoIrTy\nVersion: 2\n"), /detector high_entropy matched in body/],
  ];
  const before = upstream.requests.length;
  for (const [name, text, why] of cases) {
    for (const [how, type, body] of spellings(text)) {
      const res = await c.proxyRequest("POST", "http://api.example.test/files", { "content-type": type }, body);
      assert.equal(res.status, 403, `${name} (${how}): ${res.body}`);
      assert.match(res.body, why, `${name} (${how})`);
    }
  }
  assert.equal(upstream.requests.length, before, "a refused body reached the upstream");
  c.socket.destroy();
});
