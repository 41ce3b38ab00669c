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

/** Why this machine has no tar of the flavor, or false: for skipWhen(), before test(). */
export async function noTar(flavor: TarFlavor): Promise<string | false> {
  if (flavor === "gnu") return (await tarFlavor()) !== "gnu" && "the tar on PATH is not GNU tar";
  return !(await which("bsdtar")) && "bsdtar is not installed (Debian: apt-get install libarchive-tools)";
}

/** A PATH whose `tar` is the given flavor (noTar() said there is one). */
async function pathWithTar(t: TestContext, flavor: TarFlavor): Promise<string> {
  if (flavor === "gnu") return process.env.PATH ?? "";
  const bin = join(await tempDir(t, "bb-bsdtar-"), "bin");
  await mkdir(bin);
  await writeFile(join(bin, "tar"), '#!/bin/sh\nexec bsdtar "$@"\n', { mode: 0o755 });
  return `${bin}:${process.env.PATH ?? ""}`;
}

/** Run `fn` with PATH leading to the flavor's tar. The test skips through
 * skipWhen(await noTar(flavor), ...) where there is none. PATH is the process's: the tests
 * of one file run one at a time. */
export async function withTar(t: TestContext, flavor: TarFlavor, fn: () => Promise<void>): Promise<void> {
  const saved = process.env.PATH;
  process.env.PATH = await pathWithTar(t, flavor);
  try {
    assert.equal(await tarFlavor(), flavor);
    await fn();
  } finally {
    process.env.PATH = saved;
  }
}
