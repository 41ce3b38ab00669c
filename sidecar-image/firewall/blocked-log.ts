// The firewall's "blocked" lines, at a pace the bundle's log can take. An agent can have
// the firewall refuse thousands of requests a second; one line each filled the log faster
// than docker read it, and the daemon then left out warnings (lib/log.ts), the refusal of
// a secret among them. Here the first refusal of each (host, rule) key gets its line, the
// repeats of a logged key are counted and said in one line a window later, and keys past
// what the log may take are counted in one line per window. Lines of first refusals come
// from token buckets apart by kind (blocked.ts kindOf), and for content refusals also by
// allowlist entry, so made-up names cannot use up the lines a secret's refusal needs, nor
// one wildcard's made-up subdomains those of another allowed host. Every count is said
// within a window of the refusal (the timer runs while anything is pending) and on close.
import { clearInterval, setInterval } from "node:timers";
import type { Logger } from "../../lib/log.ts";
import { type BlockedKind, keyOf, type Refusal } from "./blocked.ts";

/** A burst of lines, then `perSecond` lines a second. */
interface Rate {
  burst: number;
  perSecond: number;
}

/**
 * What the log may take of first refusals. The bursts let a first run's honest misses
 * (a package manager trying a dozen hosts at once) all show; the sums bound a flood to a
 * few lines a second: with the summaries, at most about 10 lines (3 KiB) a second.
 */
export const LINE_RATES: Record<BlockedKind | "perRule", Rate> = {
  gate: { burst: 200, perSecond: 2 },
  content: { burst: 100, perSecond: 5 },
  keyless: { burst: 20, perSecond: 0.5 },
  /** One allowlist entry's share of `content`. */
  perRule: { burst: 20, perSecond: 1 },
};
/** How long a logged key's repeats are counted before one line says how many. */
export const WINDOW_MS = 10_000;
/** Count lines per window; the counts of keys past them go into the window's last line. */
export const MAX_COUNT_LINES = 20;
/** Keys whose repeats are being counted; a first refusal past them is counted, not logged. */
const MAX_KEYS = 1000;
/** Allowlist entries with a bucket of their own; past them (a policy that large) only the
 * content bucket bounds an entry's lines. */
const MAX_RULE_BUCKETS = 256;

export interface BlockedLog {
  /** Log `line` for `r` if it is its key's first and the log has room, else count it. */
  add(r: Refusal, line: string): void;
  /** Say every count still pending and stop the timer. */
  close(): void;
}

interface Counted {
  host: string;
  rule: string;
  kind: BlockedKind;
  /** Repeats since `since`, not yet said. */
  count: number;
  since: number;
}

const KIND_WORDS: Record<BlockedKind, string> = { content: "sent to allowed hosts", keyless: "without the agent key", gate: "to hosts or ports not allowed" };
/** Counts of secrets first: the line an operator must not miss. */
const KIND_ORDER: BlockedKind[] = ["content", "keyless", "gate"];

function bucket(rate: Rate, now: number) {
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

export function createBlockedLog(opts: { log: Logger; windowMs?: number; rates?: Partial<typeof LINE_RATES>; now?: () => number }): BlockedLog {
  const { log } = opts;
  const now = opts.now ?? Date.now;
  const windowMs = opts.windowMs ?? WINDOW_MS;
  const rates = { ...LINE_RATES, ...opts.rates };
  const kinds = { gate: bucket(rates.gate, now()), content: bucket(rates.content, now()), keyless: bucket(rates.keyless, now()) };
  const perRule = new Map<string, ReturnType<typeof bucket>>();
  const keys = new Map<string, Counted>();
  const unlogged = { gate: 0, content: 0, keyless: 0 };
  let windowStart = now();
  let timer: ReturnType<typeof setInterval> | undefined;

  const seconds = (from: number, to: number) => Math.max(1, Math.round((to - from) / 1000));

  /** Whether the log has room for one more first refusal of this kind (and rule); takes it. */
  function room(kind: BlockedKind, rule: string, at: number): boolean {
    if (keys.size >= MAX_KEYS || !kinds[kind].has(at)) return false;
    if (kind === "content") {
      let own = perRule.get(rule);
      if (!own && perRule.size < MAX_RULE_BUCKETS) perRule.set(rule, (own = bucket(rates.perRule, at)));
      if (own && !own.has(at)) return false;
      own?.take();
    }
    kinds[kind].take();
    return true;
  }

  /** Say the counts of the window now ending; forget keys quiet for a whole window. */
  function tick(): void {
    const at = now();
    const folded = { gate: 0, content: 0, keyless: 0 };
    let lines = 0;
    for (const kind of KIND_ORDER) {
      for (const [key, k] of keys) {
        if (k.kind !== kind) continue;
        if (k.count === 0) {
          if (at - k.since >= windowMs) keys.delete(key);
          continue;
        }
        if (lines++ < MAX_COUNT_LINES) log.warn(`blocked ${k.host} (${k.rule}): ${k.count} more like it in the last ${seconds(k.since, at)} s`);
        else folded[kind] += k.count;
        k.count = 0;
        k.since = at;
      }
    }
    const parts = KIND_ORDER.map((kind) => [kind, unlogged[kind] + folded[kind]] as const).filter(([, n]) => n > 0);
    const total = parts.reduce((sum, [, n]) => sum + n, 0);
    if (total > 0) {
      const which = parts.map(([kind, n]) => `${n} ${KIND_WORDS[kind]}`).join(", ");
      log.warn(`blocked ${total} more ${total === 1 ? "refusal" : "refusals"} in the last ${seconds(windowStart, at)} s, not logged one by one (${which}): the firewall's record counts them (bb-supervise blocked)`);
    }
    unlogged.gate = unlogged.content = unlogged.keyless = 0;
    windowStart = at;
    for (const [rule, b] of perRule) if (b.full(at)) perRule.delete(rule);
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
    add(r, line) {
      const { key, host, rule, kind } = keyOf(r);
      const at = now();
      pending();
      const known = keys.get(key);
      if (known) known.count++;
      else if (room(kind, r.under ?? host, at)) {
        log.warn(line);
        keys.set(key, { host, rule, kind, count: 0, since: at });
      } else unlogged[kind]++;
    },
    close() {
      tick();
      clearInterval(timer);
      timer = undefined;
    },
  };
}
