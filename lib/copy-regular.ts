// Copying a file that someone else may replace meanwhile (a bottle folder's, a checkout's
// git config) without ever waiting on what is there instead: copyFile opens its source
// blocking, so a FIFO swapped in after a check held the copy, Ctrl-C and all (node waits
// for its blocked fs thread at exit).
import { constants, type Stats } from "node:fs";
import { open } from "node:fs/promises";
import { openRegularFile } from "./read-regular.ts";

interface CopyRegularOptions {
  /** Extra open(2) flags for the source: O_NOFOLLOW where a symlink there was judged not to be one. */
  flags?: number;
}

/**
 * Copy the regular file `from` to `to` (made, or emptied, with the source's mode), as
 * copyFile does, but from the file opened without blocking and refused (STATE, naming it)
 * when that is no regular file (readRegularFile's check). Returns what was copied (fstat),
 * for a caller that keeps its times too.
 */
export async function copyRegularFile(from: string, to: string, opts: CopyRegularOptions = {}): Promise<Stats> {
  const { handle: src, st } = await openRegularFile(from, opts.flags);
  try {
    const dst = await open(to, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
    try {
      const buf = new Uint8Array(64 * 1024);
      for (;;) {
        const { bytesRead } = await src.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        for (let done = 0; done < bytesRead; ) done += (await dst.write(buf, done, bytesRead - done)).bytesWritten;
      }
      await dst.chmod(st.mode & 0o7777);
    } finally {
      await dst.close();
    }
    return st;
  } finally {
    await src.close();
  }
}
