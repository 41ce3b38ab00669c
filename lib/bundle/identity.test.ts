import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { BbError } from "../errors.ts";
import { IDENTITY_ENV_PREFIX } from "../layout.ts";
import type { Plan } from "../plan/schema.ts";
import { fifo, settled } from "../../tests/support/fifo.ts";
import { samplePlan } from "../../tests/support/plans.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { identityEnv } from "./identity.ts";

function planWith(identityFiles: (string | null)[]): Plan {
  const p = samplePlan();
  const upstreams = identityFiles.map((identityFile, i) => ({ host: `h${i}.test`, url: `ssh://git@h${i}.test`, identityFile, hostKeys: null }));
  const push = { allowedRefs: [], protectedBranches: [], protectedPaths: [], dlp: true };
  return { ...p, bottle: { ...p.bottle, git: { upstreams, repos: [], push } } };
}

test("identityEnv() hands each upstream's key by its index, and none for an upstream without one", async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, "id"), "KEY-2\n", { mode: 0o600 });
  assert.deepEqual(await identityEnv(planWith([null, null, join(dir, "id")])), { [`${IDENTITY_ENV_PREFIX}2`]: "KEY-2\n" });
});

test("an identity_file that is a FIFO by the time the bundle starts is refused (CONFIG, naming it) instead of waited on, Ctrl-C and all", async (t) => {
  const dir = await tempDir(t);
  const id = join(dir, "id_ed25519");
  await fifo(t, id);
  const err = await settled("identityEnv done with the FIFO", identityEnv(planWith([id])));
  assert.ok(err instanceof BbError && err.code === "CONFIG", String(err));
  assert.equal(err.message, `Cannot read identity_file ${id} of git upstream h0.test: it is a FIFO, not a regular file: name the private key file itself`);
});
