// The IDs of the images bot-bottle built on this machine, one per line in the cache root.
// An untagged image is judged ours by this record, not by its labels: an image built
// FROM one of ours inherits every label we set, so a label alone would make a user's
// dangling derived image look like our leftover. A tag leaves our image when a rebuild
// takes it over (a newer base) or two first starts build the same tag at once; the record
// still names the image it left.
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
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
