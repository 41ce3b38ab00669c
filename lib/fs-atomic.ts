// Replacing a file whole, so a reader (another tool, a daemon across a bind mount) never
// sees half of it: a temp file beside it (same filesystem), then rename.
import { randomBytes } from "node:crypto";
import { chmod, rename, rm, writeFile } from "node:fs/promises";
import process from "node:process";

export async function writeFileAtomic(path: string, content: string, mode = 0o600): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(3).toString("hex")}`;
  try {
    await writeFile(tmp, content, { mode });
    await chmod(tmp, mode); // whatever the umask
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
