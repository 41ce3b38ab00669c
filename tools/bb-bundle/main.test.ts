import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { mintCa } from "../../lib/tls/mod.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { runTool } from "../../tests/support/tools.ts";

test("--upstream-ca must hold PEM certificates that parse; anything else is refused before the plan is read", async (t) => {
  const dir = await tempDir(t);
  const notPem = join(dir, "hostname");
  await writeFile(notPem, "my-laptop\n");
  const broken = join(dir, "broken.pem");
  await writeFile(broken, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n");
  for (const [file, message] of [
    [notPem, /--upstream-ca .*hostname: no PEM certificate in it/],
    [broken, /--upstream-ca .*broken\.pem: a certificate in it does not parse/],
    [join(dir, "missing.pem"), /--upstream-ca .*missing\.pem: no such readable file/],
  ] as const) {
    const r = await runTool("bb-bundle", ["--upstream-ca", file], { input: "" });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
  }
  // A real CA gets past the check (and stops at the missing plan instead).
  const good = join(dir, "ca.pem");
  await writeFile(good, (await mintCa({ commonName: "test upstream CA" })).certPem);
  const r = await runTool("bb-bundle", ["--upstream-ca", good], { input: "" });
  assert.doesNotMatch(r.stderr, /--upstream-ca/);
  assert.match(r.stderr, /got no plan on stdin|stdin is empty/);
});
