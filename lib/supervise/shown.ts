// What the operator was shown. The queue is the bundle's to write too, so the file behind
// an id can change between `bb-supervise list` and `approve`. The first time bb-supervise
// reads a pending host request (list, or approve itself), a digest of everything list
// shows of it is recorded in the bottle's own folder, which no container mounts, and
// approve grants only a request that still matches it. supervise never rewrites a request
// it filed, so a changed one is refused for good: the operator denies it, and the agent
// may ask again. Questions are not recorded: an answer grants nothing, and it reaches the
// agent through the same daemon, which could make one up itself.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod/v3";
import { writeFileAtomic } from "../fs-atomic.ts";
import { readConfig } from "../sidecar-config.ts";
import { asked, type QueueRequest } from "./queue.ts";

export const SHOWN_FILE = "supervise-shown.json";

const Shown = z.object({ digest: z.string(), asked: z.string() }).strict();
const ShownFile = z.object({ version: z.literal(1), requests: z.record(z.string(), Shown) }).strict();

// Everything list shows of a request but its status: the decision is not part of the ask.
function digest(r: QueueRequest): string {
  const { kind, host, tlsPassthrough, reason, question, createdAt } = r;
  return createHash("sha256").update(JSON.stringify([kind, host, tlsPassthrough, reason, question, createdAt])).digest("hex");
}

export interface Changed {
  request: QueueRequest;
  /** What it asked for when the operator was first shown it. */
  was: string;
}

/**
 * Record each pending host request in `requests` the operator is shown for the first time, and
 * return those that no longer say what they said then. An entry is kept for good: a
 * request removed or marked decided inside the bundle and brought back still counts as
 * the one first shown.
 */
export async function noteShown(bottleDir: string, requests: QueueRequest[]): Promise<Changed[]> {
  const path = join(bottleDir, SHOWN_FILE);
  // A Map, not the parsed object: an id may be "constructor".
  const shown = new Map(Object.entries(existsSync(path) ? (await readConfig(ShownFile, path)).requests : {}));
  const changed: Changed[] = [];
  const before = shown.size;
  for (const r of requests.filter((r) => r.kind === "host" && r.status === "pending")) {
    const first = shown.get(r.id);
    if (!first) shown.set(r.id, { digest: digest(r), asked: asked(r) });
    else if (first.digest !== digest(r)) changed.push({ request: r, was: first.asked });
  }
  if (shown.size > before) await writeFileAtomic(path, JSON.stringify({ version: 1, requests: Object.fromEntries(shown) }, null, 2) + "\n");
  return changed;
}
