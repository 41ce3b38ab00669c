// Replacing a file whole, so a reader (another tool, a daemon across a bind mount) never
// sees half of it: a temp file beside it (same filesystem), then rename.
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { link, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import process from "node:process";

// O_EXCL never opens a name that is there already, a symlink included; O_NOFOLLOW says so
// where O_EXCL alone would not (an O_CREAT without it).
const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * Write `content` to `path` with exactly `mode` (whatever the umask), by rename. The folder
 * may be shared with another uid (the supervise queue is the bundle's to write too), which
 * can swap the temp name for a symlink at any moment: so the temp file is made new, and
 * its mode and content go through the open handle, never through its name again. At worst
 * the rename then moves the other side's symlink into `path` (never followed there: the
 * queue's reader opens with O_NOFOLLOW), and nothing outside the folder is touched.
 */
export async function writeFileAtomic(path: string, content: string, mode = 0o600): Promise<void> {
  await viaTempFile(path, content, mode, (tmp) => rename(tmp, path));
}

/**
 * Create `path` with `content` and mode 0600 only if nothing is there: true when this
 * call made it, false when the name was taken. The file appears whole (written beside it,
 * then linked in, which link(2) refuses onto an existing name), so of two callers at once
 * one makes it and the other reads all of what the first wrote.
 */
export async function createFileWhole(path: string, content: string): Promise<boolean> {
  let made = true;
  await viaTempFile(path, content, 0o600, async (tmp) => {
    try {
      await link(tmp, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      made = false;
    } finally {
      await rm(tmp, { force: true }); // linked in or refused, the temp name goes
    }
  });
  return made;
}

/** Write a new temp file beside `path` through its handle and hand its name to `place`. */
async function viaTempFile(path: string, content: string, mode: number, place: (tmp: string) => Promise<void>): Promise<void> {
  // Dot-prefixed, so listings (ls, the queue's own) pass it by.
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
  try {
    const handle = await open(tmp, CREATE_NEW, mode);
    try {
      await handle.chmod(mode);
      await handle.writeFile(content);
    } finally {
      await handle.close();
    }
    await place(tmp);
  } catch (e) {
    // Whatever sits at the name now is removed, not followed.
    await rm(tmp, { force: true });
    throw e;
  }
}
