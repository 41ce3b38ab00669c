// Reading a file bot-bottle keeps (a bottle's plan.json and owner.json, the cache's record
// of built images, the firewall's record of refusals, supervise's requests), or one you
// name or may replace (a manifest, an identity_file), without ever waiting on one that is
// not a file.
import { constants, type Stats } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { BbError } from "./errors.ts";

interface ReadRegularOptions {
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
  return (await readRegularFileOwned(path, opts)).text;
}

const refusal = (path: string, why: string) => new BbError("STATE", `${path} ${why}`, { details: { path, why: `it ${why}` } });

/** Why readRegularFile() refused what it was given ("it is a FIFO, not a regular file"),
 * for a caller's own message; null for any other error (node's ENOENT, say). */
export function refusedBecause(e: unknown): string | null {
  const why = e instanceof BbError ? (e.details as { why?: unknown } | undefined)?.why : undefined;
  return typeof why === "string" ? why : null;
}

/**
 * `path` opened for reading, and what it is (fstat of the open file), refused as
 * readRegularFile() refuses it; the caller closes the handle. For a reader that takes
 * more than its text (a copy, lib/copy-regular.ts).
 */
export async function openRegularFile(path: string, flags = 0): Promise<{ handle: FileHandle; st: Stats }> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | flags);
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      const what = st.isFIFO() ? "a FIFO" : st.isDirectory() ? "a folder" : st.isSocket() ? "a socket" : "a device";
      throw refusal(path, `is ${what}, not a regular file`);
    }
    return { handle, st };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

/** readRegularFile(), with the uid that owns what was read: taken from the open file
 * (fstat), so it is the owner of those very bytes, not of whatever the name holds a moment
 * later (the supervise queue believes a file by its owner: lib/supervise/owners.ts). */
export async function readRegularFileOwned(path: string, opts: ReadRegularOptions = {}): Promise<{ text: string; uid: number }> {
  const { handle, st } = await openRegularFile(path, opts.flags);
  try {
    if (opts.maxBytes === undefined) return { text: await handle.readFile("utf8"), uid: st.uid };
    // The size it says is only where to start (supervise polls small files often, and
    // should not take the most ever read each time); a file that grew past it gets one
    // buffer of that most.
    let buf = new Uint8Array(Math.min(st.size, opts.maxBytes) + 1);
    let used = 0;
    for (;;) {
      if (used === buf.length) {
        if (used > opts.maxBytes) break;
        const most = new Uint8Array(opts.maxBytes + 1);
        most.set(buf);
        buf = most;
      }
      const { bytesRead } = await handle.read(buf, used, buf.length - used, used);
      if (bytesRead === 0) break;
      used += bytesRead;
    }
    if (used > opts.maxBytes) throw refusal(path, `is over ${opts.maxBytes} bytes, more than bot-bottle ever writes there`);
    return { text: new TextDecoder().decode(buf.subarray(0, used)), uid: st.uid };
  } finally {
    await handle.close();
  }
}
