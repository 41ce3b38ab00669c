// The firewall's record of what it refused: one entry per (host, rule) with a count, when
// it was first and last refused and one sample, kept in the bottle's state dir where the
// agent has no mount. The bundle's log says the first refusal of each key and counts the
// repeats (sidecar-image/firewall/blocked-log.ts), at a bounded rate, so under a flood it
// names only the first few hundred keys and then some a second; it rotates (10 MiB x 3)
// and goes with the container. The record keeps the first BLOCKED_LIMITS keys whatever
// follows (later new keys only count in `others`), and outlives the container.
// The firewall (sidecar-image/firewall/blocked.ts) writes it; `bb-supervise blocked` reads it.
import { constants } from "node:fs";
import { join } from "node:path";
import { z } from "zod/v3";
import { BbError } from "./errors.ts";
import { readRegularFile } from "./read-regular.ts";
import { parseJsonFile } from "./sidecar-config.ts";

/** The folder below the bottle's state dir (mounted into the bundle at BUNDLE_PATHS.firewallBlocked). */
export const BLOCKED_DIR = "firewall-blocked";
export const BLOCKED_FILE = "blocked.json";
export const BLOCKED_VERSION = 1;
/**
 * Distinct (host, rule) keys kept, by kind: `gate`, a host or port the policy does not
 * allow (any name the agent makes up); `content`, what was sent to an allowed host (a DLP
 * finding, a body too large or unreadable); `keyless`, a client on the machine without the
 * agent key (a 407: someone who is not the agent knocking on the published port). Apart,
 * so a flood of made-up names sent first cannot crowd out a secret the agent then tries
 * to send, nor a knocker the agent's own attempts. A refusal under any other key only
 * counts in `others`.
 */
export const BLOCKED_LIMITS = { gate: 400, content: 100, keyless: 20 } as const;
/**
 * Content keys kept per allowlist entry (the `under` of an entry): made-up subdomains of
 * one allowed `*.example`, each carrying a secret, take at most these of the content keys,
 * so a secret sent to another allowed host after them is still listed.
 */
export const CONTENT_KEYS_PER_RULE = 10;
/**
 * Allowlist entries whose first content key is kept once the content keys are all taken:
 * ten flooded wildcards fill BLOCKED_LIMITS.content, and a secret sent under an entry with
 * no key yet (another allowed host) is listed all the same, up to this many entries.
 */
export const CONTENT_FIRST_KEYS = 100;
const MAX_BLOCKED_ENTRIES = BLOCKED_LIMITS.gate + BLOCKED_LIMITS.content + CONTENT_FIRST_KEYS + BLOCKED_LIMITS.keyless;
/** Cuts (characters) of what the agent chose; a host is a DNS name (253 at most) already. */
export const MAX_HOST_CHARS = 253;
export const MAX_RULE_CHARS = 60;
export const MAX_SAMPLE_CHARS = 200;
/** Far over what MAX_BLOCKED_ENTRIES entries at those cuts take (about 400 KiB). */
export const MAX_RECORD_BYTES = 2 * 1024 * 1024;

const Instant = z.string().datetime({ offset: true });
const Count = z.number().int().nonnegative();

export const BlockedEntry = z.object({
  host: z.string().max(MAX_HOST_CHARS * 4),
  rule: z.string().max(MAX_RULE_CHARS * 4),
  count: z.number().int().positive(),
  firstSeen: Instant,
  lastSeen: Instant,
  sample: z.string().max(MAX_SAMPLE_CHARS * 4),
  /** The allowlist entry the host was allowed by ("*.example"), for a content refusal. */
  under: z.string().max(MAX_HOST_CHARS * 4).optional(),
});
export type BlockedEntry = z.infer<typeof BlockedEntry>;

export const BlockedRecord = z.object({
  version: z.literal(BLOCKED_VERSION),
  /** The keys this record keeps of each kind (BLOCKED_LIMITS when it was written). */
  // keyless, contentPerRule and contentFirsts are absent from a record written before they were kept.
  limits: z.object({ gate: Count, content: Count, keyless: Count.optional(), contentPerRule: Count.optional(), contentFirsts: Count.optional() }),
  updatedAt: Instant,
  entries: z.array(BlockedEntry).max(MAX_BLOCKED_ENTRIES * 2),
  /** Refusals under keys that came after the record was full. */
  others: z.object({ count: Count, firstSeen: Instant.nullable(), lastSeen: Instant.nullable() }),
});
export type BlockedRecord = z.infer<typeof BlockedRecord>;

export const blockedRecordPath = (stateDir: string) => join(stateDir, BLOCKED_DIR, BLOCKED_FILE);

/**
 * The record at `path`; null when there is none (no bundle has run, or nothing was refused
 * yet). The folder is the bundle's to write, so the name is never followed as a symlink,
 * nor read past MAX_RECORD_BYTES.
 */
export async function readBlockedRecord(path: string): Promise<BlockedRecord | null> {
  let text: string;
  try {
    text = await readRegularFile(path, { maxBytes: MAX_RECORD_BYTES, flags: constants.O_NOFOLLOW });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    const why = code === "ELOOP" ? `${path} is a symlink, which the firewall never writes` : (e as Error).message;
    throw new BbError("STATE", `Cannot read the firewall's record of refusals: ${why}`, { cause: e, details: { path } });
  }
  return parseJsonFile(BlockedRecord, text, path);
}
