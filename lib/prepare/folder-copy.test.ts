import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chmod, mkdir, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { BbError } from "../errors.ts";
import { fifo, settled } from "../../tests/support/fifo.ts";
import { folderState } from "../../tests/support/folder-state.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { copyTree } from "./folder-copy.ts";

/** A small bottle-folder part: a folder with a file of its own mode and times, a bigger
 * file (more than one read), and a link. */
async function sample(dir: string): Promise<string> {
  const from = join(dir, "from");
  await mkdir(join(from, "firewall"), { recursive: true });
  await writeFile(join(from, "firewall", "policy.json"), "{}\n");
  await chmod(join(from, "firewall", "policy.json"), 0o640);
  await utimes(join(from, "firewall", "policy.json"), 1_700_000_000, 1_700_000_123.456);
  await writeFile(join(from, "big"), "x".repeat(200_000));
  await symlink("firewall/policy.json", join(from, "link"));
  return from;
}

test("copyTree() copies a folder whole: each file's content, mode and mtime, links as links", async (t) => {
  const dir = await tempDir(t);
  const from = await sample(dir);
  await copyTree(from, join(dir, "to"));
  assert.deepEqual(await folderState(join(dir, "to")), await folderState(from));
});

test("copyTree() refuses a FIFO in the folder (STATE, naming it) instead of waiting on it", async (t) => {
  const dir = await tempDir(t);
  const from = await sample(dir);
  await fifo(t, join(from, "firewall", "pipe"));
  const err = await settled("the copy done with the FIFO", copyTree(from, join(dir, "to")));
  assert.ok(err instanceof BbError && err.code === "STATE", String(err));
  assert.match(err.message, new RegExp(`^${join(from, "firewall", "pipe")} is not a file, folder or symlink: `));
});

test("copyTree() refuses a FIFO swapped in for a file after it was judged one (STATE, naming it) instead of waiting on it, Ctrl-C and all", async (t) => {
  const dir = await tempDir(t);
  const from = await sample(dir);
  const policy = join(from, "firewall", "policy.json");
  const judged = async (path: string) => {
    if (path !== policy) return;
    await rm(path);
    await fifo(t, path);
  };
  const err = await settled("the copy done with the FIFO", copyTree(from, join(dir, "to"), { judged }));
  assert.ok(err instanceof BbError && err.code === "STATE", String(err));
  assert.equal(err.message, `${policy} is a FIFO, not a regular file: bot-bottle never makes one there, so it does not copy it aside; remove it`);
});

test("copyTree() does not follow a link swapped in for a file after it was judged one", async (t) => {
  const dir = await tempDir(t);
  const from = await sample(dir);
  await writeFile(join(dir, "elsewhere"), "not the bottle's\n");
  const big = join(from, "big");
  const judged = async (path: string) => {
    if (path !== big) return;
    await rm(path);
    await symlink(join(dir, "elsewhere"), path);
  };
  await assert.rejects(copyTree(from, join(dir, "to"), { judged }), { code: "ELOOP" });
  assert.ok(!existsSync(join(dir, "to", "big")));
});
