import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { which } from "../../lib/proc.ts";
import { mintCa } from "../../lib/tls/mod.ts";
import { fifo } from "../../tests/support/fifo.ts";
import { hangingEngine } from "../../tests/support/hanging-engine.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { pathWithout, runTool } from "../../tests/support/tools.ts";

const noDocker = !(await which("docker")) && "no docker CLI on PATH: the hung engine is met through it";

test("--upstream-ca must hold PEM certificates that parse; anything else (a FIFO, never waited on, or a folder) is refused before the plan is read, naming it", async (t) => {
  const dir = await tempDir(t);
  await fifo(t, join(dir, "ca.fifo"));
  const notPem = join(dir, "hostname");
  await writeFile(notPem, "my-laptop\n");
  const broken = join(dir, "broken.pem");
  await writeFile(broken, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n");
  for (const [file, message] of [
    [notPem, /--upstream-ca .*hostname: no PEM certificate in it/],
    [broken, /--upstream-ca .*broken\.pem: a certificate in it does not parse/],
    [join(dir, "missing.pem"), /--upstream-ca .*missing\.pem: no such readable file/],
    [join(dir, "ca.fifo"), /--upstream-ca .*ca\.fifo: it is a FIFO, not a regular file/],
    [dir, /--upstream-ca .*: it is a folder, not a regular file/],
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
  assert.match(r.stderr, /got no plan on stdin|stdin is empty/i);
});

test("an engine that accepts and never answers: bb-bundle gives up after BB_DOCKER_TIMEOUT with exit 124, says it is hung (not to start it), and leaves no docker CLI connected", skipWhen(noDocker, "bb-bundle against a hung engine"), async (t) => {
  const state = await tempDir(t);
  const prepared = await runTool("bb-prepare", ["shell", "--state-dir", state]);
  assert.equal(prepared.code, 0, prepared.stderr);
  const engine = await hangingEngine(t);
  const started = Date.now();
  const r = await runTool("bb-bundle", [], { input: prepared.stdout, env: { DOCKER_HOST: engine.host, BB_DOCKER_TIMEOUT: "1" } });
  assert.equal(r.code, 124, r.stderr);
  assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`);
  assert.match(r.stderr, /^bb-bundle: error: Cannot reach the Docker engine: the Docker engine did not answer `docker version --format '\{\{json \.Server\}\}'` within 1 s\. Is it hung\? Restart it/m);
  assert.doesNotMatch(r.stderr, /Start the Docker engine/);
  assert.equal(await engine.clientsClosed(), 0);
});

test("a smolmachines plan with no smolvm, or one too old, is refused before bb-bundle asks docker for anything", async (t) => {
  const dir = await tempDir(t);
  const prepared = await runTool("bb-prepare", ["shell", "--backend", "smolmachines", "--state-dir", join(dir, "state")]);
  assert.equal(prepared.code, 0, prepared.stderr);
  // A docker that only notes it was called; PATH without any smolvm of this machine's.
  const bin = join(dir, "bin");
  await mkdir(bin);
  await writeFile(join(bin, "docker"), `#!/bin/sh\ntouch ${join(dir, "docker-called")}\nexit 1\n`, { mode: 0o755 });
  const path = `${bin}:${pathWithout("smolvm")}`;
  const missing = await runTool("bb-bundle", [], { input: prepared.stdout, env: { PATH: path } });
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /^bb-bundle: error: Cannot ask smolvm for its version: .*\(is smolvm installed and on PATH\?\)/m);
  await writeFile(join(bin, "smolvm"), "#!/bin/sh\necho 'smolvm 0.1.0'\n", { mode: 0o755 });
  const old = await runTool("bb-bundle", [], { input: prepared.stdout, env: { PATH: path } });
  assert.equal(old.code, 1, old.stderr);
  assert.match(old.stderr, /^bb-bundle: error: smolvm 0\.1\.0 is too old: bot-bottle needs smolvm [\d.]+ or later$/m);
  assert.ok(!existsSync(join(dir, "docker-called")), "bb-bundle called docker for a bottle it cannot start");
});
