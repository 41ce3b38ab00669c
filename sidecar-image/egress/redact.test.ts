import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Readable } from "node:stream";
import { test } from "node:test";
import { maskAll, maskHeaderValue, Redactor, secretForms } from "./redact.ts";

const secrets = secretForms(["s3cr3t-token-value", "dG9rZW4tYmFzZTY0", "short"]);

async function through(chunks: Buffer[]): Promise<string> {
  const out: Buffer[] = [];
  for await (const c of Readable.from(chunks).pipe(new Redactor(secrets))) out.push(c as Buffer);
  return Buffer.concat(out).toString();
}

test("secretForms() leaves out values too short to search for without masking ordinary text", () => {
  assert.deepEqual(secrets.map((s) => s.latin1), ["s3cr3t-token-value", "dG9rZW4tYmFzZTY0"]);
});

test("secretForms() adds the spellings an echo quotes a token in: JSON with \\/, and percent-encoded", () => {
  const token = "ab+cd/ef==gh";
  const forms = secretForms([token]).map((s) => s.latin1);
  for (const spelled of [token, "ab+cd\\/ef==gh", "ab%2Bcd%2Fef%3D%3Dgh", "ab%2bcd%2fef%3d%3dgh"]) assert.ok(forms.includes(spelled), spelled);
  const echoed = maskAll(Buffer.from(`{"token":"ab+cd\\/ef==gh"} Location: /cb?t=ab%2Bcd%2Fef%3D%3Dgh`), secretForms([token])).toString();
  assert.ok(!echoed.includes("ab+cd") && !echoed.includes("ab%2Bcd"), echoed);
});

test("Redactor masks a secret cut at every possible point, and overlapping near-misses stay", async () => {
  const text = Buffer.from("a s3cr3t-token-valu s3cr3t-token-value b dG9rZW4tYmFzZTY0dG9rZW4tYmFzZTY0 c s3cr3t");
  const whole = maskAll(text, secrets).toString();
  assert.equal(whole.length, text.length);
  assert.ok(!whole.includes("s3cr3t-token-value") && !whole.includes("dG9rZW4tYmFzZTY0"));
  assert.ok(whole.startsWith("a s3cr3t-token-valu ") && whole.endsWith(" c s3cr3t"), "near-misses and a trailing prefix pass unchanged");
  for (let i = 0; i <= text.length; i++) {
    for (const j of [i, i + 1, i + 7]) {
      const cuts = [text.subarray(0, i), text.subarray(i, Math.min(j, text.length)), text.subarray(Math.min(j, text.length))];
      assert.equal(await through(cuts), whole, `cut at ${i} and ${j}`);
    }
  }
});

test("maskHeaderValue() keeps the length and what surrounds the secret", () => {
  assert.equal(maskHeaderValue("Bearer s3cr3t-token-value", secrets), "Bearer [egress-redacted][");
  assert.equal(maskHeaderValue("nothing here", secrets), "nothing here");
});

test("a Redactor takes whole TLS records, several, before it asks the answer to wait for a 'drain'", () => {
  const redactor = new Redactor(secrets);
  // Nobody reads its output: writes are taken up to the window (RELAY_HIGH_WATER_MARK on
  // each side), where node's default asked for a 'drain' after every record; then it holds back.
  let taken = 0;
  while (taken < 20 && redactor.write(Buffer.alloc(16 * 1024, "x"))) taken++;
  assert.ok(taken >= 4 && taken < 20, `took ${taken} records before asking to wait`);
  redactor.destroy();
});
