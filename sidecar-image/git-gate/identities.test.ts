import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import type { BbError } from "../../lib/errors.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { identitiesFromEnv } from "./identities.ts";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

test("identitiesFromEnv() writes each <prefix><n> to identity-<n> (0600, byte for byte) in a new folder of its own (0700), takes the variables out of the environment, and removes the folder", async (t) => {
  const parent = await tempDir(t);
  const env: Record<string, string | undefined> = { BB_GIT_IDENTITY_0: KEY, BB_GIT_IDENTITY_2: "second\n", PATH: "/bin" };
  const ids = identitiesFromEnv("BB_GIT_IDENTITY_", env, parent);
  assert.equal(ids.count, 2);
  assert.equal(ids.dir.startsWith(join(parent, "git-gate-identities-")), true, ids.dir);
  assert.equal((await stat(ids.dir)).mode & 0o777, 0o700);
  assert.deepEqual((await readdir(ids.dir)).sort(), ["identity-0", "identity-2"]);
  assert.equal(await readFile(join(ids.dir, "identity-0"), "utf8"), KEY);
  assert.equal((await stat(join(ids.dir, "identity-0"))).mode & 0o777, 0o600);
  assert.deepEqual(env, { PATH: "/bin" }, "git, ssh and the push hook inherit no key");
  // A second start (init restarted the gate) gets a folder of its own.
  const again = identitiesFromEnv("BB_GIT_IDENTITY_", { BB_GIT_IDENTITY_0: KEY }, parent);
  assert.notEqual(again.dir, ids.dir);
  ids.remove();
  again.remove();
  assert.equal(existsSync(ids.dir) || existsSync(again.dir), false);
});

test("identitiesFromEnv() refuses a variable that names no upstream index, before writing anything", async (t) => {
  const parent = await tempDir(t);
  assert.throws(() => identitiesFromEnv("BB_GIT_IDENTITY_", { BB_GIT_IDENTITY_X: KEY }, parent), (e: BbError) => e.code === "USAGE" && /BB_GIT_IDENTITY_X/.test(e.message));
  assert.deepEqual(await readdir(parent), []);
});
