// packFolder() with each real tar a host may have: GNU tar (Linux) and bsdtar (macOS; on
// Linux from libarchive-tools), put first on PATH as `tar`. Each archive is read back with
// GNU tar, as the guest unpacks it.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { run, which } from "../proc.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { noTar, withTar } from "../../tests/support/tar.ts";
import { tempDir, writeTree } from "../../tests/support/tmp.ts";
import { packFolder } from "./pack.ts";

/** Set a user extended attribute on `file`; false where the file system takes none. */
const setXattr = async (file: string) =>
  (await run(["python3", "-c", "import os,sys; os.setxattr(sys.argv[1], b'user.bb', b'1')", file], { expect: [0, 1] })).code === 0;

/** Why no extended attribute can be set in $TMPDIR (where the tests' files are), or false. */
async function noXattrs(): Promise<string | false> {
  if (!(await which("python3"))) return "python3 (to set an extended attribute) is not installed";
  const dir = await mkdtemp(join(tmpdir(), "bb-xattr-"));
  try {
    await writeFile(join(dir, "probe"), "");
    return !(await setXattr(join(dir, "probe"))) && "this file system takes no user extended attributes";
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
const xattrsMissing = await noXattrs();

/** The entries of a tar as GNU tar lists them (the guest's tar), and its warnings. */
async function gnuList(tarFile: string): Promise<{ names: string[]; stderr: string }> {
  const r = await run(["/usr/bin/tar", "-tvf", tarFile]);
  return { names: r.stdout.split("\n").filter(Boolean).map((l) => l.split(/\s+/).slice(5).join(" ")), stderr: r.stderr };
}

// test(), not describe/it: deno runs no t.after() of an it(), and the temp dirs would stay.
for (const flavor of ["gnu", "bsd"] as const) {
  const tar = flavor === "gnu" ? "GNU tar" : "bsdtar";
  const tarMissing = await noTar(flavor);
  test(`packFolder() with ${tar}: leaves out exactly the paths named (pattern characters in a name, a folder with what is below it), not the same names elsewhere`, skipWhen(tarMissing, `packFolder() leaving out, with ${tar}`), (t) =>
    withTar(t, flavor, async () => {
      const dir = await tempDir(t);
      const src = await writeTree(join(dir, "src"), {
        ".git/config": "[core]\n",
        "sub/.git/config": "[core]\n",
        "st*ar": "1",
        "sub/st*ar": "2",
        "drop/x": "3",
        "keep.txt": "4",
      });
      const tarFile = join(dir, "out.tar");
      const r = await packFolder({ from: src, tarFile, names: ["."], leaveOut: [join(src, ".git/config"), join(src, "st*ar"), join(src, "drop"), "/elsewhere/x"], what: "pack" });
      assert.equal(r.changed, null);
      const { names, stderr } = await gnuList(tarFile);
      const files = names.filter((n) => !n.endsWith("/")).sort();
      assert.deepEqual(files, ["./keep.txt", "./sub/.git/config", "./sub/st*ar"]);
      assert.equal(stderr, "");
      assert.ok(!existsSync(`${tarFile}.exclude`), "the exclusion list was left behind");
    }));

  test(`packFolder() with ${tar}: appends to an archive, and packs named entries only`, skipWhen(tarMissing, `packFolder() appending, with ${tar}`), (t) =>
    withTar(t, flavor, async () => {
      const dir = await tempDir(t);
      const a = await writeTree(join(dir, "a"), { "one": "1", "skip": "x" });
      const b = await writeTree(join(dir, "b"), { "two": "2", "three": "3" });
      const tarFile = join(dir, "out.tar");
      await packFolder({ from: a, tarFile, names: ["./one"], leaveOut: [], what: "pack" });
      await packFolder({ from: b, tarFile, names: ["./two"], leaveOut: [], append: true, what: "pack" });
      assert.deepEqual((await gnuList(tarFile)).names, ["./one", "./two"]);
    }));

  test(`packFolder() with ${tar}: carries no extended attributes the guest's GNU tar would warn about`, skipWhen(tarMissing || xattrsMissing, `extended attributes with ${tar}`), (t) =>
    withTar(t, flavor, async () => {
      const dir = await tempDir(t);
      const src = await writeTree(join(dir, "src"), { "tagged": "1" });
      assert.ok(await setXattr(join(src, "tagged")), "the extended attribute was not set");
      const tarFile = join(dir, "out.tar");
      await packFolder({ from: src, tarFile, names: ["."], leaveOut: [], what: "pack" });
      const { names, stderr } = await gnuList(tarFile);
      assert.deepEqual(names, ["./", "./tagged"]);
      assert.equal(stderr, "", "GNU tar warned reading the archive");
    }));
}
