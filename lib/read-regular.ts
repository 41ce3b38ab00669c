// Reading a file bot-bottle keeps (a bottle's plan.json and owner.json, the cache's record
// of built images) without ever waiting on one that is not a file.
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { BbError } from "./errors.ts";

/**
 * The text of `path`, refused with an error naming it when it is no regular file: a FIFO
 * there (or a link to one, or to /dev/zero) would hold bb-list, bb-cleanup and the start
 * flow's teardown forever. Opened without blocking, then checked on what was opened, so
 * nothing is swapped in between. A missing file is node's ENOENT.
 */
export async function readRegularFile(path: string): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      const what = st.isFIFO() ? "a FIFO" : st.isDirectory() ? "a folder" : st.isSocket() ? "a socket" : "a device";
      throw new BbError("STATE", `${path} is ${what}, not a regular file`, { details: { path } });
    }
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}
