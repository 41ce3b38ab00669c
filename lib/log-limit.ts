// Log lines an agent can cause once per request, at a pace a daemon's log can take. One
// line per request filled the bundle's log faster than docker read it (an allowed host that
// is down: a line per request in egress, and one per passthrough CONNECT in the firewall),
// and lib/log.ts then leaves out warnings, other ones among them. Here the first line of
// each key gets out at once, its repeats are counted and said in one line a window later,
// and keys past what the log may take (token buckets per kind, and optionally per share of
// a kind: the allowlist entry a host came under, so one wildcard's made-up subdomains
// cannot use up the lines of other hosts) are counted in one line per window. A count line
// says too how many other wordings its repeats had (a few, bounded), so a key whose later
// repeats failed for another reason does not pass for one reason only. Every count is said
// within a window (the
// timer runs while anything is pending) and on close; a key quiet for a window is
// forgotten, and at most MAX_KEYS are held, so memory stays bounded.
import { clearInterval, setInterval } from "node:timers";
import type { Logger } from "./log.ts";

/** A burst of lines, then `perSecond` lines a second. */
export interface Rate {
  burst: number;
  perSecond: number;
}

type LimitedLevel = "info" | "warn" | "error";

/** How long a logged key's repeats are counted before one line says how many. */
export const WINDOW_MS = 10_000;
/** Count lines per window; the counts of keys past them go into the window's last line. */
export const MAX_COUNT_LINES = 20;
/** Keys whose repeats are being counted; a first line past them is counted, not logged. */
const MAX_KEYS = 1000;
/** Shares with a bucket of their own; past them only their kind's bucket bounds a share. */
const MAX_SHARE_BUCKETS = 256;
/** Keys and labels are cut to this: text from the agent (a URL, a host) could be long. */
const MAX_KEY_CHARS = 600;
/** Other wordings of a key's repeats told apart per window; at this a count line says "or more". */
const MAX_OTHER_REASONS = 10;

interface LineLimiterOptions<K extends string> {
  log: Logger;
  /** What the log may take of first lines, per kind. */
  rates: Record<K, Rate>;
  /** Count lines are said in this order (the line an operator must not miss first). */
  order: readonly K[];
  /** A bucket of its own for each `share` a line names, inside its kind's. */
  shareRate?: Rate;
  /**
   * A logged key's repeats: "upstream a.test: ECONNREFUSED (4 more like it in the last 10 s)";
   * `others`, how many reasons unlike the logged line's they had (at most MAX_OTHER_REASONS).
   */
  repeated?: (label: string, count: number, seconds: number, others: number) => string;
  /** The window's last line: what was neither logged nor counted in a line of its own. */
  summary: (counts: [K, number][], total: number, seconds: number) => string;
  windowMs?: number;
  now?: () => number;
}

interface LimitedLine<K extends string> {
  /** What repeats are counted under (a host and an error code, say); defaults to the line. */
  key?: string;
  kind: K;
  /** What the count line says its repeats were like; defaults to the line. */
  label?: string;
  /** Why, when lines of one key can differ in it (a refusal's reason): repeats' others are counted. */
  reason?: string;
  /** The share of the kind's lines this one takes from (blocked-log: the allowlist entry). */
  share?: string;
  level?: LimitedLevel;
}

interface LineLimiter<K extends string> {
  /** Log `line` if its key is new and the log has room, else count it. */
  add(line: string, how: LimitedLine<K>): void;
  /** Say every count still pending and stop the timer. */
  close(): void;
}

interface Counted<K> {
  label: string;
  kind: K;
  level: LimitedLevel;
  /** Repeats since `since`, not yet said. */
  count: number;
  since: number;
  /** The logged line's reason's hash, and those of its repeats' other reasons since `since` (bounded). */
  reason: number | undefined;
  others: Set<number>;
}

/** FNV-1a: a reason told apart by 32 bits, not held whole (keys x reasons would add up). */
function hashOf(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function tokenBucket(rate: Rate, now: number) {
  let tokens = rate.burst;
  let last = now;
  const refill = (at: number) => {
    tokens = Math.min(rate.burst, tokens + ((at - last) / 1000) * rate.perSecond);
    last = at;
  };
  return {
    has(at: number) {
      refill(at);
      return tokens >= 1;
    },
    take: () => void tokens--,
    full(at: number) {
      refill(at);
      return tokens >= rate.burst;
    },
  };
}

const cut = (s: string) => (s.length > MAX_KEY_CHARS ? `${s.slice(0, MAX_KEY_CHARS)}…` : s);
/** ", 3 other reasons among them" ("10 or more" past the bound); nothing when all were alike. */
export const otherReasons = (others: number) =>
  others === 0 ? "" : `, ${others >= MAX_OTHER_REASONS ? `${MAX_OTHER_REASONS} or more` : others} other ${others === 1 ? "reason" : "reasons"} among them`;
const parenthesised = (label: string, n: number, s: number, others: number) => `${label} (${n} more like it in the last ${s} s${otherReasons(others)})`;

export function createLineLimiter<K extends string>(opts: LineLimiterOptions<K>): LineLimiter<K> {
  const { log, order } = opts;
  const now = opts.now ?? Date.now;
  const windowMs = opts.windowMs ?? WINDOW_MS;
  const repeated = opts.repeated ?? parenthesised;
  const kinds = new Map(order.map((k) => [k, tokenBucket(opts.rates[k], now())]));
  const shares = new Map<string, ReturnType<typeof tokenBucket>>();
  const keys = new Map<string, Counted<K>>();
  const unlogged = new Map<K, number>();
  let windowStart = now();
  let timer: ReturnType<typeof setInterval> | undefined;

  const seconds = (from: number, to: number) => Math.max(1, Math.round((to - from) / 1000));
  const say = (level: LimitedLevel, text: string) => log[level](text);

  /** Whether the log has room for one more first line of this kind (and share); takes it. */
  function room(kind: K, share: string | undefined, at: number): boolean {
    const bucket = kinds.get(kind)!;
    if (keys.size >= MAX_KEYS || !bucket.has(at)) return false;
    if (share !== undefined && opts.shareRate) {
      let own = shares.get(share);
      if (!own && shares.size < MAX_SHARE_BUCKETS) shares.set(share, (own = tokenBucket(opts.shareRate, at)));
      if (own && !own.has(at)) return false;
      own?.take();
    }
    bucket.take();
    return true;
  }

  /** Say the counts of the window now ending; forget keys quiet for a whole window. */
  function tick(): void {
    const at = now();
    const folded = new Map<K, number>();
    let lines = 0;
    for (const kind of order) {
      for (const [key, k] of keys) {
        if (k.kind !== kind) continue;
        if (k.count === 0) {
          if (at - k.since >= windowMs) keys.delete(key);
          continue;
        }
        if (lines++ < MAX_COUNT_LINES) say(k.level, repeated(k.label, k.count, seconds(k.since, at), k.others.size));
        else folded.set(kind, (folded.get(kind) ?? 0) + k.count);
        k.count = 0;
        k.since = at;
        k.others.clear();
      }
    }
    const parts = order.map((kind) => [kind, (unlogged.get(kind) ?? 0) + (folded.get(kind) ?? 0)] as [K, number]).filter(([, n]) => n > 0);
    const total = parts.reduce((sum, [, n]) => sum + n, 0);
    if (total > 0) log.warn(opts.summary(parts, total, seconds(windowStart, at)));
    unlogged.clear();
    windowStart = at;
    for (const [share, b] of shares) if (b.full(at)) shares.delete(share);
    if (keys.size === 0 && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  }

  function pending(): void {
    if (timer) return;
    windowStart = now();
    timer = setInterval(tick, windowMs);
    timer.unref();
  }

  return {
    add(line, how) {
      const key = cut(how.key ?? line);
      const reason = how.reason === undefined ? undefined : hashOf(cut(how.reason));
      const at = now();
      pending();
      const known = keys.get(key);
      if (known) {
        known.count++;
        if (reason !== undefined && reason !== known.reason && known.others.size < MAX_OTHER_REASONS) known.others.add(reason);
      } else if (room(how.kind, how.share, at)) {
        const level = how.level ?? "warn";
        say(level, line);
        keys.set(key, { label: cut(how.label ?? line), kind: how.kind, level, count: 0, since: at, reason, others: new Set() });
      } else unlogged.set(how.kind, (unlogged.get(how.kind) ?? 0) + 1);
    },
    close() {
      tick();
      clearInterval(timer);
      timer = undefined;
    },
  };
}

/** Lines of one kind a daemon says per request of the agent's, for `createAgentLines`. */
const AGENT_LINE_RATE: Rate = { burst: 50, perSecond: 1 };
/**
 * One share's part of AGENT_LINE_RATE: a wildcard's made-up subdomains, each failing in
 * its own words, take at most this, and leave the rest to other hosts. A few shares
 * flooding at once still leave some: 4 take 40 of the burst, and less than they refill.
 */
export const AGENT_SHARE_RATE: Rate = { burst: 10, perSecond: 0.2 };

/**
 * A daemon's lines the agent can cause, each said under a key (defaults to the line) and
 * from a share of the daemon's lines (the allowlist entry the host came under, say), when
 * one is named.
 */
interface AgentLines {
  info(line: string, key?: string, share?: string): void;
  warn(line: string, key?: string, share?: string): void;
  error(line: string, key?: string, share?: string): void;
  close(): void;
}

/**
 * The limiter for a daemon's lines the agent can cause once per request or connection (an
 * allowed host that is down, a refused git session): one kind, keyed by what the caller
 * says a line is about. `what` names them in the window's last line ("egress warnings").
 */
export function createAgentLines(opts: { log: Logger; what: string; rate?: Rate; shareRate?: Rate; windowMs?: number; now?: () => number }): AgentLines {
  const limiter = createLineLimiter({
    log: opts.log,
    rates: { agent: opts.rate ?? AGENT_LINE_RATE },
    shareRate: opts.shareRate ?? AGENT_SHARE_RATE,
    order: ["agent"],
    windowMs: opts.windowMs,
    now: opts.now,
    summary: (_, total, s) => `${total} more ${opts.what} in the last ${s} s, not logged: too many different ones at once`,
  });
  const at = (level: LimitedLevel) => (line: string, key?: string, share?: string) => limiter.add(line, { kind: "agent", key, share, level });
  return { info: at("info"), warn: at("warn"), error: at("error"), close: () => limiter.close() };
}
