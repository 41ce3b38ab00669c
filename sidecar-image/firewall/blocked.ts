// The firewall's side of lib/blocked-record.ts: a bounded summary of its refusals, kept
// in memory and written whole (temp file + rename) at most once per interval and on close.
// The first distinct (host, rule) keys of each kind (BLOCKED_LIMITS) stay for good, content
// keys at most CONTENT_KEYS_PER_RULE per allowlist entry, and past the content keys the
// first key of each entry yet without one (CONTENT_FIRST_KEYS); a flood of new names after them
// bumps `others` and nothing else, so it can neither push the first ones out nor grow the
// file. A restarted firewall carries on from the record it finds.
import { clearTimeout, setTimeout } from "node:timers";
import { BLOCKED_LIMITS, BLOCKED_VERSION, CONTENT_FIRST_KEYS, CONTENT_KEYS_PER_RULE, MAX_HOST_CHARS, MAX_RULE_CHARS, MAX_SAMPLE_CHARS, readBlockedRecord, type BlockedEntry, type BlockedRecord } from "../../lib/blocked-record.ts";
import { writeFileAtomic } from "../../lib/fs-atomic.ts";
import type { Logger } from "../../lib/log.ts";
import { printable } from "../../lib/printable.ts";

/** One refusal as the firewall logs it: `blocked <what> <host>: <reason>`. */
export interface Refusal {
  /** The host as logged ("(redacted host name)" when the name itself held a secret). */
  host: string;
  reason: string;
  /** The method, "websocket" or "passthrough tunnel". */
  what: string;
  /** The allowlist entry that allowed the host ("*.example"), when what was sent was refused. */
  under?: string;
}

/**
 * The rule a refusal counts under: a few words of the firewall's own, never the agent's
 * text (a refused protocol or charset name is the agent's, so it stays in the sample).
 * One host refused for the same thing a thousand times is one key.
 */
export function ruleOf(r: Pick<Refusal, "reason" | "what">): string {
  if (r.reason.startsWith(NO_AGENT_KEY)) return "no agent key";
  const port = /^port (\d{1,5}) is not allowed/.exec(r.reason);
  const detector = /^detector ([a-z_]{1,30}) matched/.exec(r.reason);
  if (r.reason.startsWith("host is not in this bottle's allowlist")) return "not allowed";
  if (port) return `port ${port[1]} not allowed`;
  if (detector) return `dlp ${detector[1]}`;
  if (/too large|more than \d+ fragments/.test(r.reason)) return "too large to scan";
  if (r.what === "passthrough tunnel") return "passthrough tls";
  if (r.what === "websocket") return "websocket";
  if (/^(an )?upgrade/.test(r.reason)) return "upgrade";
  return "cannot scan";
}

/** How a 407's reason begins (firewall.ts): a client without the agent key. */
export const NO_AGENT_KEY = "no agent key (407)";

export type BlockedKind = keyof typeof BLOCKED_LIMITS;

/** Which budget a rule's keys come from (BLOCKED_LIMITS): the gate's, whose keys are any
 * name or port the agent makes up, what was sent to an allowed host, or a keyless client's. */
export const kindOf = (rule: string): BlockedKind =>
  rule === "no agent key" ? "keyless" : rule === "not allowed" || /^port \d+ not allowed$/.test(rule) ? "gate" : "content";

const cut = (text: string, max: number) => {
  const chars = [...printable(text)];
  return chars.length <= max ? chars.join("") : `${chars.slice(0, max - 1).join("")}…`;
};

/** A refusal's key, as the record and the log count it: its host and rule, cut and printable. */
export function keyOf(r: Refusal): { key: string; host: string; rule: string; kind: BlockedKind } {
  const host = cut(r.host, MAX_HOST_CHARS);
  const rule = cut(ruleOf(r), MAX_RULE_CHARS);
  return { key: JSON.stringify([host, rule]), host, rule, kind: kindOf(rule) };
}

export interface BlockedSummary {
  add(r: Refusal): void;
  snapshot(): BlockedRecord;
}

export type BlockedLimits = Record<BlockedKind | "contentPerRule" | "contentFirsts", number>;

export function createBlockedSummary(opts: { limits?: Partial<BlockedLimits>; now?: () => Date; from?: BlockedRecord | null } = {}): BlockedSummary {
  const limits: BlockedLimits = { ...BLOCKED_LIMITS, contentPerRule: CONTENT_KEYS_PER_RULE, contentFirsts: CONTENT_FIRST_KEYS, ...opts.limits };
  const now = opts.now ?? (() => new Date());
  const entries = new Map<string, BlockedEntry>();
  // `contentFirsts`: entries' first content keys kept after the content keys were all taken.
  const used = { gate: 0, content: 0, keyless: 0, contentFirsts: 0 };
  // Content keys by allowlist entry (the host itself when none was named).
  const perRule = new Map<string, number>();
  /** Whether a content key under `rule` is kept; takes its room. */
  const contentRoom = (rule: string) => {
    const n = perRule.get(rule) ?? 0;
    if (n >= limits.contentPerRule) return false;
    const over = used.content >= limits.content;
    if (over && (n > 0 || used.contentFirsts >= limits.contentFirsts)) return false;
    used[over ? "contentFirsts" : "content"]++;
    perRule.set(rule, n + 1);
    return true;
  };
  const keep = (key: string, e: BlockedEntry) => {
    const kind = kindOf(e.rule);
    if (kind === "content" ? !contentRoom(e.under ?? e.host) : used[kind] >= limits[kind]) return false;
    if (kind !== "content") used[kind]++;
    entries.set(key, e);
    return true;
  };
  for (const e of opts.from?.entries ?? []) keep(JSON.stringify([e.host, e.rule]), { ...e });
  const others = { count: 0, firstSeen: null as string | null, lastSeen: null as string | null, ...opts.from?.others };
  return {
    add(r) {
      const at = now().toISOString();
      const { key, host, rule } = keyOf(r);
      const known = entries.get(key);
      const under = r.under === undefined ? {} : { under: cut(r.under, MAX_HOST_CHARS) };
      if (known) {
        known.count++;
        known.lastSeen = at;
      } else if (!keep(key, { host, rule, count: 1, firstSeen: at, lastSeen: at, sample: cut(`${r.what}: ${r.reason}`, MAX_SAMPLE_CHARS), ...under })) {
        others.count++;
        others.firstSeen ??= at;
        others.lastSeen = at;
      }
    },
    snapshot: () => ({ version: BLOCKED_VERSION, limits: { ...limits }, updatedAt: now().toISOString(), entries: [...entries.values()].map((e) => ({ ...e })), others: { ...others } }),
  };
}

export interface BlockedRecorder {
  add(r: Refusal): void;
  /** Write what is not written yet and stop the timer. */
  close(): Promise<void>;
}

/** Default time between two writes: a flood rewrites the file at most this often. */
export const WRITE_INTERVAL_MS = 1000;

/**
 * A summary kept in `path`: read back at start (a record that cannot be read is said and
 * begun anew), written `intervalMs` after the first refusal since the last write. A write
 * that fails is said once, until one succeeds; the refusal is in the log all the same.
 * Where there is none yet, an empty one is written at once, before the firewall listens:
 * run as a non-root user, bb-bundle leaves the folder shared with every daemon (sticky,
 * lib/bundle/blocked-dir.ts), and a record another daemon made first would be one the
 * firewall cannot replace, shown on the host as the firewall's.
 */
export async function openBlockedRecord(path: string, opts: { log: Logger; intervalMs?: number; limits?: Partial<BlockedLimits>; now?: () => Date }): Promise<BlockedRecorder> {
  const from = await readBlockedRecord(path).catch((e: Error) => {
    opts.log.warn(`cannot read the record of refusals ${path}, starting a new one: ${e.message}`);
    return null;
  });
  const summary = createBlockedSummary({ limits: opts.limits, now: opts.now, from });
  const interval = opts.intervalMs ?? WRITE_INTERVAL_MS;
  let dirty = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let writing: Promise<void> | null = null;
  let failing = false;

  async function flush(): Promise<void> {
    while (writing) await writing;
    if (!dirty) return;
    dirty = false;
    writing = writeFileAtomic(path, `${JSON.stringify(summary.snapshot())}\n`, 0o640)
      .then(() => void (failing = false))
      .catch((e: Error) => {
        if (!failing) opts.log.warn(`cannot write the record of refusals ${path}: ${e.message} (the log still says the first refusal of each host and rule, and counts the rest)`);
        failing = true;
      })
      .finally(() => void (writing = null));
    await writing;
  }

  if (from === null) {
    dirty = true;
    await flush();
  }

  return {
    add(r) {
      summary.add(r);
      dirty = true;
      if (timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        void flush();
      }, interval);
      timer.unref();
    },
    async close() {
      clearTimeout(timer);
      timer = undefined;
      await flush();
    },
  };
}
