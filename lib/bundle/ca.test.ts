import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { isBbError } from "../errors.ts";
import { CA_KEY_ENV } from "../layout.ts";
import { fifo, settled } from "../../tests/support/fifo.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { caKeyEnv, stageBottleCa } from "./ca.ts";

async function matches(cert: string, key: string): Promise<boolean> {
  return new X509Certificate(await readFile(cert, "utf8")).checkPrivateKey(createPrivateKey(await readFile(key, "utf8")));
}

test("stageBottleCa(): two starts minting one bottle's CA at once both end with the one placed, whole, its key matching, and nothing else left", async (t) => {
  const root = await tempDir(t);
  for (let i = 0; i < 20; i++) {
    const dir = join(root, `b${i}`);
    await mkdir(dir);
    const [a, b] = await Promise.all([stageBottleCa(dir, "x"), stageBottleCa(dir, "x")]);
    const [pa, pb] = await Promise.all([a.place(), b.place()]);
    assert.deepEqual([pa.created, pb.created].sort(), [false, true], "exactly one start made it");
    assert.ok(await matches(pa.cert, pa.key), `round ${i}: the CA's key is not its certificate's`);
    assert.deepEqual(await readdir(dir), ["ca"], "a staged CA was left beside it");
    // Yours alone: the bundle never sees the file (bb-bundle hands the firewall its content).
    assert.equal((await stat(pa.key)).mode & 0o777, 0o600);
  }
});

test("stageBottleCa(): a start that fails before placing its CA removes only what it minted; a CA there already is kept as it is", async (t) => {
  const dir = await tempDir(t);
  const first = await stageBottleCa(dir, "x");
  assert.equal(first.minted, true);
  await first.discard();
  assert.deepEqual(await readdir(dir), [], "the discarded CA is gone");

  const placed = await (await stageBottleCa(dir, "x")).place();
  const cert = await readFile(placed.cert, "utf8");
  const again = await stageBottleCa(dir, "x");
  assert.equal(again.minted, false, "nothing of this run's for a rollback to undo");
  await again.discard();
  const resumed = await again.place();
  assert.equal(resumed.created, false);
  assert.equal(await readFile(resumed.cert, "utf8"), cert, "the bottle's CA changed");
});

test("stageBottleCa(): a ca folder holding something else is named, not minted into", async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, "ca"));
  await writeFile(join(dir, "ca", "ca-key.pem"), "half of an older start\n");
  const staged = await stageBottleCa(dir, "x");
  await assert.rejects(staged.place(), (e) => isBbError(e) && e.code === "STATE" && /holds something else than a CA .*remove that folder/.test(e.message));
  assert.equal(await readFile(join(dir, "ca", "ca-key.pem"), "utf8"), "half of an older start\n");
  assert.ok(!existsSync(join(dir, "ca", "ca.pem")));
  assert.deepEqual(await readdir(dir), ["ca"]);
});

test("a placed CA whose certificate or key is a FIFO by the time the bundle starts again is refused (STATE, naming it) instead of waited on, Ctrl-C and all", async (t) => {
  for (const which of ["cert", "key"] as const) {
    const dir = join(await tempDir(t), "b");
    await mkdir(dir);
    const placed = await (await stageBottleCa(dir, "x")).place();
    assert.equal((await caKeyEnv(placed.key))[CA_KEY_ENV], await readFile(placed.key, "utf8"));
    await rm(placed[which]);
    await fifo(t, placed[which]);
    const resume = async () => caKeyEnv((await (await stageBottleCa(dir, "x")).place()).key);
    const err = await settled(`the resumed start done with the ${which} FIFO`, resume());
    assert.ok(isBbError(err) && err.code === "STATE", String(err));
    const named = which === "cert" ? `${placed.cert} is a FIFO, not a regular file` : `Cannot read the bottle CA key ${placed.key}: it is a FIFO, not a regular file`;
    assert.equal(err.message, named);
  }
});
