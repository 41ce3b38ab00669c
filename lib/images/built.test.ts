import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "../../tests/support/tmp.ts";
import { BUILT_FILE, builtIds, pruneBuilt, recordBuilt } from "./built.ts";

const id = (c: string) => `sha256:${c.repeat(64)}`;

test("recordBuilt() appends image IDs to a 0600 record that builtIds() reads back, skipping what is not an ID", async (t) => {
  const dir = await tempDir(t);
  const cache = join(dir, "cache");
  assert.deepEqual(await builtIds(cache), new Set(), "no record yet");
  recordBuilt(cache, id("a"));
  recordBuilt(cache, id("b"));
  recordBuilt(cache, "sha256:short");
  await writeFile(join(cache, BUILT_FILE), "junk\n", { flag: "a" });
  assert.deepEqual(await builtIds(cache), new Set([id("a"), id("b")]));
  assert.equal((await readFile(join(cache, BUILT_FILE), "utf8")).split("\n").length, 4);
  assert.equal((await stat(join(cache, BUILT_FILE))).mode & 0o777, 0o600);
});

test("builtIds() of a record that is a FIFO returns at once with nothing, rather than waiting on it", async (t) => {
  const dir = await tempDir(t);
  assert.equal(spawnSync("mkfifo", [join(dir, BUILT_FILE)]).status, 0);
  assert.deepEqual(await builtIds(dir), new Set());
});

test("recordBuilt() into a cache root that cannot be made is no error (the image just cannot be found untagged later)", async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, "file"), "");
  recordBuilt(join(dir, "file", "cache"), id("c"));
});

test("pruneBuilt() drops the IDs it is given and keeps every other, and leaves a missing record or a FIFO alone", async (t) => {
  const dir = await tempDir(t);
  await pruneBuilt(join(dir, "none"), new Set([id("a")]));
  recordBuilt(dir, id("a"));
  recordBuilt(dir, id("b"));
  recordBuilt(dir, id("c"));
  await pruneBuilt(dir, new Set([id("b"), id("d")]));
  assert.equal(await readFile(join(dir, BUILT_FILE), "utf8"), `${id("a")}\n${id("c")}\n`);
  assert.equal((await stat(join(dir, BUILT_FILE))).mode & 0o777, 0o600);
  recordBuilt(dir, id("e"));
  assert.deepEqual(await builtIds(dir), new Set([id("a"), id("c"), id("e")]), "appends go on after a prune");
  const fifo = await tempDir(t);
  assert.equal(spawnSync("mkfifo", [join(fifo, BUILT_FILE)]).status, 0);
  await pruneBuilt(fifo, new Set([id("a")]));
  assert.ok((await stat(join(fifo, BUILT_FILE))).isFIFO());
});
