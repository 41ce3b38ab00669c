import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { copyRegularFile } from "./copy-regular.ts";
import { BbError } from "./errors.ts";
import { fifo, settled } from "../tests/support/fifo.ts";
import { tempDir } from "../tests/support/tmp.ts";

test("copyRegularFile() copies all of a file larger than one read, with its mode, over what the target held", async (t) => {
  const dir = await tempDir(t);
  const text = Array.from({ length: 30_000 }, (_, i) => `line ${i}\n`).join("");
  await writeFile(join(dir, "from"), text, { mode: 0o640 });
  await writeFile(join(dir, "to"), "x".repeat(text.length * 2));
  const st = await copyRegularFile(join(dir, "from"), join(dir, "to"));
  assert.equal(await readFile(join(dir, "to"), "utf8"), text);
  assert.equal((await stat(join(dir, "to"))).mode & 0o7777, 0o640);
  assert.equal(st.size, text.length);
});

test("copyRegularFile() refuses a FIFO (STATE, naming it) instead of waiting on it, and makes no target", async (t) => {
  const dir = await tempDir(t);
  await fifo(t, join(dir, "from"));
  const err = await settled("the copy done with the FIFO", copyRegularFile(join(dir, "from"), join(dir, "to")));
  assert.ok(err instanceof BbError && err.code === "STATE", String(err));
  assert.equal(err.message, `${join(dir, "from")} is a FIFO, not a regular file`);
  assert.ok(!existsSync(join(dir, "to")));
});
