import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, chown, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { dirWithMode, makeNewDir, stateRootFrom } from "./paths.ts";
import { tempDir } from "../tests/support/tmp.ts";
import type { BbError } from "./errors.ts";
import { skipWhen } from "../tests/support/skip.ts";

const notRoot = process.getuid?.() !== 0 && "chown to another uid needs root";

test("dirWithMode() makes missing parents, gives the folder its mode, and fails (not hangs) where no folder can be made", async () => {
  const root = await mkdtemp(join(tmpdir(), "bb-paths-"));
  try {
    const dir = join(root, "a", "b", "c");
    await dirWithMode(dir, 0o750);
    assert.equal((await stat(dir)).mode & 0o777, 0o750);
    await dirWithMode(dir, 0o700); // an existing folder takes the mode too
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    await writeFile(join(root, "file"), "");
    await assert.rejects(dirWithMode(join(root, "file"), 0o700), { code: "ENOTDIR" });
    await assert.rejects(dirWithMode(join(root, "file", "below"), 0o700), { code: "ENOTDIR" });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  // Creating a folder in /proc fails with ENOENT although /proc is there: node's own
  // recursive mkdir retries that forever.
  await assert.rejects(dirWithMode("/proc/bb-no-such/state", 0o700), { code: "ENOENT" });
});

test("makeNewDir() makes its parents, and of many callers racing for one name exactly one made it", async (t) => {
  const root = await tempDir(t);
  for (let round = 0; round < 20; round++) {
    const made = await Promise.all(Array.from({ length: 8 }, () => makeNewDir(join(root, "bottles", `b-${round}`))));
    assert.equal(made.filter(Boolean).length, 1, `round ${round}: ${made}`);
  }
  assert.equal(await makeNewDir(join(root, "bottles", "b-0")), false);
});

test("a state root every user may write to, or with such a bottles/ folder, is refused naming it (USAGE); one of your own, or none yet, is taken", async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, "root");
  assert.equal(stateRootFrom(root), root, "not there yet: bot-bottle makes it 0700");
  await mkdir(join(root, "bottles"), { recursive: true, mode: 0o700 });
  await chmod(root, 0o700);
  assert.equal(stateRootFrom(root), root);
  await chmod(root, 0o1777);
  assert.throws(() => stateRootFrom(root), (e: BbError) => {
    assert.equal(e.code, "USAGE");
    assert.equal(e.message, `--state-dir ${root} is writable by every user (mode 1777): any of them could change your bottles' plans and keys; run chmod o-w ${root}, or use a folder of your own`);
    return true;
  });
  await chmod(root, 0o700);
  await chmod(join(root, "bottles"), 0o777);
  assert.throws(() => stateRootFrom(root), /--state-dir .*: its bottles\/ folder is writable by every user \(mode 777\)/);
});

test("a state root another user owns is refused naming its owner", skipWhen(notRoot, "foreign state root"), async (t) => {
  const root = await tempDir(t);
  await chown(root, 64104, 0);
  assert.throws(() => stateRootFrom(root), (e: BbError) => {
    assert.equal(e.code, "USAGE");
    assert.match(e.message, /^--state-dir .* belongs to uid 64104, not to you \(uid 0\): its owner could change your bottles' plans and keys; use a folder of your own$/);
    return true;
  });
});
