// Run a test with a given tar first on PATH as `tar`: GNU tar (Linux) or bsdtar (macOS's;
// on Linux from libarchive-tools), so the packing code is checked against both.
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import type { TestContext } from "node:test";
import { which } from "../../lib/proc.ts";
import { tarFlavor, type TarFlavor } from "../../lib/provision/pack.ts";
import { tempDir } from "./tmp.ts";

/** A PATH whose `tar` is the given flavor, or why this machine has none. */
async function pathWithTar(t: TestContext, flavor: TarFlavor): Promise<string | { skip: string }> {
  if (flavor === "gnu") {
    return (await tarFlavor()) === "gnu" ? process.env.PATH ?? "" : { skip: "the tar on PATH is not GNU tar" };
  }
  if (!(await which("bsdtar"))) return { skip: "bsdtar is not installed (Debian: apt-get install libarchive-tools)" };
  const bin = join(await tempDir(t, "bb-bsdtar-"), "bin");
  await mkdir(bin);
  await writeFile(join(bin, "tar"), '#!/bin/sh\nexec bsdtar "$@"\n', { mode: 0o755 });
  return `${bin}:${process.env.PATH ?? ""}`;
}

/** Run `fn` with PATH leading to the flavor's tar; skipped, saying why, where there is none.
 * PATH is the process's: the tests of one file run one at a time. */
export async function withTar(t: TestContext, flavor: TarFlavor, fn: () => Promise<void>): Promise<void> {
  const path = await pathWithTar(t, flavor);
  if (typeof path !== "string") {
    console.log(`SKIP ${flavor} tar: ${path.skip}`);
    t.skip(path.skip);
    return;
  }
  const saved = process.env.PATH;
  process.env.PATH = path;
  try {
    assert.equal(await tarFlavor(), flavor);
    await fn();
  } finally {
    process.env.PATH = saved;
  }
}
