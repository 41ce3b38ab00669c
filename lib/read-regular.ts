// Reading a file bot-bottle keeps (a bottle's plan.json and owner.json, the cache's record
// of built images, the firewall's record of refusals) without ever waiting on one that is
// not a file.
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { BbError } from "./errors.ts";

export interface ReadRegularOptions {
  /** Refuse a file over this many bytes, reading at most one byte more (it may still grow). */
  maxBytes?: number;
  /** Extra open(2) flags: O_NOFOLLOW for a file in a folder a container may write. */
  flags?: number;
}

/**
 * The text of `path`, refused with an error naming it when it is no regular file: a FIFO
 * there (or a link to one, or to /dev/zero) would hold bb-list, bb-cleanup and the start
 * flow's teardown forever. Opened without blocking, then checked on what was opened, so
 * nothing is swapped in between. A missing file is node's ENOENT (ELOOP for a symlink
 * under O_NOFOLLOW).
 */
export async function readRegularFile(path: string, opts: ReadRegularOptions = {}): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | (opts.flags ?? 0));
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      const what = st.isFIFO() ? "a FIFO" : st.isDirectory() ? "a folder" : st.isSocket() ? "a socket" : "a device";
      throw new BbError("STATE", `${path} is ${what}, not a regular file`, { details: { path } });
    }
    if (opts.maxBytes === undefined) return await handle.readFile("utf8");
    const buf = new Uint8Array(opts.maxBytes + 1);
    let used = 0;
    for (let n = -1; n !== 0 && used < buf.length; used += n) n = (await handle.read(buf, used, buf.length - used, used)).bytesRead;
    if (used > opts.maxBytes) throw new BbError("STATE", `${path} is over ${opts.maxBytes} bytes, more than bot-bottle ever writes there`, { details: { path } });
    return new TextDecoder().decode(buf.subarray(0, used));
  } finally {
    await handle.close();
  }
}
