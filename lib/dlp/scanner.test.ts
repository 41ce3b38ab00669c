import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { DETECTORS, type Detector } from "../sidecar-config.ts";
import { createScanner } from "./scanner.ts";

interface Positive {
  detector: Detector;
  sample: string;
}
const load = (name: string) => JSON.parse(readFileSync(new URL(`./testdata/${name}`, import.meta.url), "utf8"));
const positives: Positive[] = load("positive.json").map((p: Positive) => ({ ...p, sample: p.sample.replaceAll("·", "") }));
const negatives: { name: string; text: string }[] = load("negative.json");

test("the positive corpus covers every detector except sensitive_env (tested with values below)", () => {
  const covered = new Set(positives.map((p) => p.detector));
  assert.deepEqual(DETECTORS.filter((d) => d !== "sensitive_env" && !covered.has(d)), []);
});

test("every positive sample is blocked by its own detector", () => {
  const scanner = createScanner();
  for (const p of positives) {
    const f = scanner.scan(p.sample);
    assert.equal(f?.detector, p.detector, `${p.detector} sample ${p.sample.slice(0, 30)}… gave ${JSON.stringify(f)}`);
  }
});

test("no negative sample (ordinary traffic) is blocked", () => {
  const scanner = createScanner();
  for (const n of negatives) assert.deepEqual(scanner.scanAll(n.text), [], n.name);
});

test("a positive sample embedded in ordinary text is still found", () => {
  const scanner = createScanner();
  const body = negatives.find((n) => n.name === "anthropic messages body")!.text;
  for (const p of positives) {
    const text = body.replace("Please fix the failing test", `Please use ${JSON.stringify(p.sample).slice(1, -1)} to fix the failing test`);
    assert.equal(scanner.scan(text)?.detector, p.detector, p.sample.slice(0, 30));
  }
});

test("disabling a detector lets its samples through (and the entropy check does not catch them instead)", () => {
  // A service-account JSON holds a PEM key, so the private_key detector still sees it.
  const alsoCaughtBy: Partial<Record<Detector, Detector>> = { gcp: "private_key" };
  for (const p of positives) {
    const f = createScanner({ disabled: [p.detector] }).scan(p.sample);
    if (f) assert.equal(f.detector, alsoCaughtBy[p.detector], `${p.detector} disabled still gave ${JSON.stringify(f)}`);
  }
});

test("excerpts show at most a four-character prefix and the length, or a PEM header", () => {
  const scanner = createScanner();
  for (const p of positives) {
    for (const f of scanner.scanAll(p.sample)) assert.match(f.excerpt, /^(.{0,4}…\(\d+ chars\)|-----BEGIN [A-Z ]+-----)$/, p.sample.slice(0, 20));
  }
});

const SECRET = "s3cr3t/value+with spaces";
const sensitive = createScanner({ sensitive: [{ name: "MY_TOKEN", value: SECRET }, { name: "TINY", value: "abc" }] });

test("a sensitive value is found as is, JSON-escaped, URL-encoded, and base64 at every alignment", () => {
  const forms = [
    `x=${SECRET}`,
    JSON.stringify({ q: `"${SECRET}"` }),
    `/search?q=${encodeURIComponent(SECRET)}`,
    Buffer.from(SECRET).toString("base64"),
    Buffer.from(`k:${SECRET}`).toString("base64"),
    Buffer.from(`kk:${SECRET}!`).toString("base64"),
    Buffer.from(`?>${SECRET}`).toString("base64url"),
  ];
  for (const text of forms) {
    const f = sensitive.scan(text);
    assert.equal(f?.detector, "sensitive_env", text);
    assert.match(f.label, /MY_TOKEN/);
    assert.ok(!f.excerpt.includes("s3cr"), "the excerpt never shows a sensitive value");
  }
  assert.equal(sensitive.scan("s3cr3t/value+with"), null, "a prefix alone is not the value");
});

test("sensitive values too short to match safely are ignored and reported", () => {
  assert.deepEqual(sensitive.ignoredSensitive, ["TINY"]);
  assert.equal(sensitive.scan("abc abc abc"), null);
  assert.equal(createScanner({ disabled: ["sensitive_env"], sensitive: [{ name: "X", value: SECRET }] }).scan(SECRET), null);
});

test("keys are found percent-encoded (URLs, forms) and inside base64-encoded text", () => {
  const scanner = createScanner();
  const aws = positives.find((p) => p.sample.startsWith("aws_secret"))!.sample;
  assert.equal(scanner.scan(`/upload?cfg=${encodeURIComponent(aws)}`)?.detector, "aws");
  const env = Buffer.from(`FOO=1\nTOKEN=${positives.find((p) => p.detector === "npm")!.sample}\n`).toString("base64");
  const f = scanner.scan(JSON.stringify({ content: env }));
  assert.equal(f?.detector, "npm");
  assert.match(f.label, /base64/);
});

test("a known format hidden inside a certificate block is still found", () => {
  const npm = positives.find((p) => p.detector === "npm")!.sample;
  const text = `-----BEGIN CERTIFICATE-----\nMIIB${"x".repeat(60)}\n${npm}\n-----END CERTIFICATE-----\n`;
  assert.equal(createScanner().scan(text)?.detector, "npm");
});

test("the entropy check flags random base62 tokens of 40 chars and ignores hex of any length", () => {
  let seed = 0x9e3779b9;
  const next = () => ((seed = (seed ^ (seed << 13)) >>> 0), (seed = (seed ^ (seed >>> 17)) >>> 0), (seed = (seed ^ (seed << 5)) >>> 0));
  const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const scanner = createScanner();
  let caught = 0;
  for (let i = 0; i < 200; i++) {
    let t = "";
    for (let j = 0; j < 40; j++) t += alpha[next() % 62];
    if (scanner.scan(`value: ${t}`)?.detector === "high_entropy") caught++;
  }
  assert.ok(caught >= 180, `caught ${caught}/200`);
  for (const n of [32, 40, 64, 128]) assert.equal(scanner.scan("ab12".repeat(n / 4).replace(/./g, () => "0123456789abcdef"[next() % 16]!)), null);
});

test("scan() of a 1 MiB API body stays in the tens of milliseconds", (t) => {
  const scanner = createScanner({ sensitive: [{ name: "A", value: SECRET }] });
  let body = "";
  while (body.length < 1 << 20) for (const n of negatives) body += n.text + "\n";
  scanner.scan(body); // warm the JIT
  const start = performance.now();
  assert.equal(scanner.scan(body), null);
  const ms = performance.now() - start;
  t.diagnostic(`scan of ${body.length} bytes: ${ms.toFixed(1)} ms`);
  assert.ok(ms < 250, `took ${ms} ms`); // generous: CI machines are shared
});
