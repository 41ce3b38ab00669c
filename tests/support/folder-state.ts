// A bottle folder's state, to compare it before and after what must leave it as it was.
import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";

/** Everything in a bottle folder as a y/N must leave it: each entry's kind and mode, a
 * file's content and mtime (to the ms), a symlink's target. Folders' own mtimes are left out: a
 * folder's changes with every name made and removed in it, the flow's own flow/ among them. */
export async function folderState(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    const path = join(dir, rel);
    const st = await lstat(path);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out[rel] = `link ${await readlink(path)}`;
    else if (st.isDirectory()) {
      out[rel] = `dir ${mode}`;
      for (const name of (await readdir(path)).sort()) await walk(rel === "." ? name : join(rel, name));
    } else if (!st.isFile()) out[rel] = `other ${mode}`;
    else {
      // The CA's key, by its hash: a failed assertion prints what it compares.
      const text = await readFile(path, "utf8");
      // mtime to the millisecond: node sets file times through a double, which keeps less.
      out[rel] = `file ${mode} ${Math.floor(st.mtimeMs)} ${rel.startsWith("ca/") ? createHash("sha256").update(text).digest("hex") : text}`;
    }
  };
  await walk(".");
  return out;
}
