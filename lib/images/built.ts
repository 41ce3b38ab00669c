// The IDs of the images bot-bottle built on this machine, one per line in the cache root.
// An untagged image is judged ours by this record, not by its labels: an image built
// FROM one of ours inherits every label we set, so a label alone would make a user's
// dangling derived image look like our leftover. A tag leaves our image when a rebuild
// takes it over (a newer base) or two first starts build the same tag at once; the record
// still names the image it left. bb-cleanup --images drops the IDs of images the engine no
// longer has (pruneBuilt), so the record holds about as many lines as there are images.
import { appendFileSync, constants, mkdirSync } from "node:fs";
import { appendFile, open } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../fs-atomic.ts";
import { log } from "../log.ts";
import { readRegularFile } from "../read-regular.ts";

export const BUILT_FILE = "built-images";
const ID = /^sha256:[0-9a-f]{64}$/;

/** Add one built image's ID. Best effort: a cache root that cannot be written costs only
 * the chance to find this image untagged later. */
export function recordBuilt(cacheRoot: string, id: string): void {
  if (!ID.test(id)) return;
  try {
    mkdirSync(cacheRoot, { recursive: true, mode: 0o700 });
    // One short append: O_APPEND keeps concurrent builds' lines whole.
    appendFileSync(join(cacheRoot, BUILT_FILE), `${id}\n`, { mode: 0o600 });
  } catch (e) {
    log.debug(`cannot record built image ${id} in ${cacheRoot}: ${(e as Error).message}`);
  }
}

/** Every ID recorded (empty when nothing was, or the record is no regular file: a FIFO
 * there cannot hold bb-cleanup). */
export async function builtIds(cacheRoot: string): Promise<Set<string>> {
  const path = join(cacheRoot, BUILT_FILE);
  let text: string;
  try {
    text = await readRegularFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") log.warn(`ignoring ${path} (the images bot-bottle built): ${(e as Error).message}`);
    return new Set();
  }
  return new Set(text.split("\n").filter((l) => ID.test(l)));
}

/**
 * Drop the IDs in `gone` (images the engine no longer has) from the record, keeping every
 * other line. Replaced whole by rename; a build that appended meanwhile wrote to the file
 * replaced, so what it appended after the read is appended again to the new one. Best
 * effort, as recording is: a record left as it was only keeps some dead lines.
 */
export async function pruneBuilt(cacheRoot: string, gone: ReadonlySet<string>): Promise<void> {
  if (gone.size === 0) return;
  const path = join(cacheRoot, BUILT_FILE);
  try {
    const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
    try {
      if (!(await handle.stat()).isFile()) return;
      const read = await handle.readFile();
      const kept = read.toString("utf8").split("\n").filter((l) => ID.test(l) && !gone.has(l));
      await writeFileAtomic(path, kept.map((l) => `${l}\n`).join(""));
      const grown = (await handle.stat()).size - read.length;
      if (grown > 0) {
        const tail = Buffer.alloc(grown);
        const { bytesRead } = await handle.read(tail, 0, grown, read.length);
        await appendFile(path, tail.subarray(0, bytesRead), { mode: 0o600 });
      }
    } finally {
      await handle.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") log.warn(`cannot drop the images gone since from ${path} (the images bot-bottle built): ${(e as Error).message}`);
  }
}
