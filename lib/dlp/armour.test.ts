// PEM and OpenPGP armour in the spellings a request carries it: inside a JSON string (line
// breaks as "\n" or "\r\n" escapes, "/" maybe as "\/") or a form field (%0A). A genuine
// certificate, signature or public key passes as it does in a plain file; a private key,
// random bytes wearing the armour, or a token in an armour header line do not.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { createScanner } from "./scanner.ts";
import { lines } from "./wrapped-base64.ts";

const corpus: { name: string; text: string }[] = JSON.parse(readFileSync(new URL("./testdata/negative.json", import.meta.url), "utf8"));
const sample = (prefix: string) => corpus.find((n) => n.name.startsWith(prefix))!.text;
const ARMOURED = ["pgp signature", "ssh signature", "git commit object with gpgsig", "pgp public key block", "pem certificate"];

/** `text` as it travels: plain, in JSON ("\n", "\r\n", "\/"), in a form field (%0A, %0D%0A). */
const spellings = (text: string): [string, string][] => [
  ["plain", text],
  ["JSON", JSON.stringify({ content: text })],
  ["JSON \\r\\n", JSON.stringify({ content: text.replaceAll("\n", "\r\n") })],
  ["JSON \\/", JSON.stringify({ content: text }).replaceAll("/", "\\/")],
  ["form", `content=${encodeURIComponent(text)}`],
  ["form CRLF", `content=${encodeURIComponent(text.replaceAll("\n", "\r\n"))}`],
];

let seed = 75;
/** Random-looking base64 of `bytes` bytes, wrapped at 64 columns as PEM writes it. */
const randomRows = (bytes: number) => Buffer.from(Array.from({ length: bytes }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) >> 23)).toString("base64").replace(/.{64}/g, "$&\n");
const RANDOM = "Xq7Lm2Pz9Rt4Vb8Nc1Kd6Fg3Hj5Wy0QsAeUoIrTy";

test("lines cuts at line feeds, real or escaped (with a \\r before), never at an escaped backslash before an n", () => {
  const text = "ab\\ncd\\r\\nef\r\ngh \\t\nij\\\\nkl\\\"mn";
  assert.deepEqual(lines(text).map((l) => text.slice(l.start, l.end)), ["ab", "cd", "ef", "gh", "ij\\\\nkl\\\"mn"]);
});

test("a certificate, signature or public key passes in a JSON string or a form field as it does plain", () => {
  const scanner = createScanner();
  for (const name of ARMOURED) for (const [how, text] of spellings(sample(name))) assert.deepEqual(scanner.scanAll(text), [], `${name} (${how})`);
});

test("a private key, or random bytes wearing certificate or signature armour, is blocked in every spelling, plain included", () => {
  const scanner = createScanner();
  const rows = randomRows(120);
  assert.equal(scanner.scan(rows)?.detector, "high_entropy", "the rows alone must be flagged for this test to mean anything");
  const cert = sample("pem certificate");
  const cases: [string, string, string][] = [
    ["private key", `-----BEGIN PRIVATE KEY-----\n${rows}\n-----END PRIVATE KEY-----\n`, "private_key"],
    ["private key after a certificate (a bundle)", `${cert}-----BEGIN EC PRIVATE KEY-----\n${rows}\n-----END EC PRIVATE KEY-----\n`, "private_key"],
    ["random bytes in certificate armour", `-----BEGIN CERTIFICATE-----\n${rows}\n-----END CERTIFICATE-----\n`, "high_entropy"],
    ["random bytes in signature armour", `-----BEGIN PGP SIGNATURE-----\n\n${rows}\n=8L3u\n-----END PGP SIGNATURE-----\n`, "high_entropy"],
    ["random bytes in SSH signature armour", `-----BEGIN SSH SIGNATURE-----\n${rows}\n-----END SSH SIGNATURE-----\n`, "high_entropy"],
  ];
  for (const [name, block, detector] of cases) {
    for (const [how, text] of spellings(block)) assert.equal(scanner.scan(text)?.detector, detector, `${name} (${how})`);
  }
});

test("a token written in an armour header line of a genuine block is checked: the payload leaves the line out, so sparing it would let anything through", () => {
  const scanner = createScanner();
  // (A token on the line just before wrapped rows is read as their first row: wrapped-base64.ts.)
  const withComment = (name: string) => sample(name).replace(/(-----BEGIN [A-Z ]+-----\n)/, `$1Comment: ${RANDOM}\nVersion: 2\n`);
  for (const name of ["pgp signature", "pem certificate"]) {
    for (const [how, text] of spellings(withComment(name))) assert.equal(scanner.scan(text)?.detector, "high_entropy", `${name} (${how})`);
  }
  const versioned = sample("pgp signature").replace("\n\n", "\nVersion: GnuPG v2\nComment: signed by the release key\n\n");
  for (const [how, text] of spellings(versioned)) assert.deepEqual(scanner.scanAll(text), [], `ordinary header lines (${how})`);
});
