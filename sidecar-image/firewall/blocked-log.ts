// The firewall's "blocked" lines, at a pace the bundle's log can take. An agent can have
// the firewall refuse thousands of requests a second; one line each filled the log faster
// than docker read it, and the daemon then left out warnings (lib/log.ts), the refusal of
// a secret among them. The first refusal of each (host, rule) key gets its line, the
// repeats of a logged key are counted and said in one line a window later, and keys past
// what the log may take are counted in one line per window (lib/log-limit.ts). Lines of
// first refusals come from budgets apart by kind (blocked.ts kindOf), and for content
// refusals also by allowlist entry, so made-up names cannot use up the lines a secret's
// refusal needs, nor one wildcard's made-up subdomains those of another allowed host.
import type { Logger } from "../../lib/log.ts";
import { createLineLimiter, otherReasons, type Rate } from "../../lib/log-limit.ts";
import { type BlockedKind, keyOf, type Refusal } from "./blocked.ts";

export { MAX_COUNT_LINES, WINDOW_MS } from "../../lib/log-limit.ts";

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

export interface BlockedLog {
  /** Log `line` for `r` if it is its key's first and the log has room, else count it. */
  add(r: Refusal, line: string): void;
  /** Say every count still pending and stop the timer. */
  close(): void;
}

const KIND_WORDS: Record<BlockedKind, string> = { content: "sent to allowed hosts", keyless: "without the agent key", gate: "to hosts or ports not allowed" };
/** Counts of secrets first: the line an operator must not miss. */
const KIND_ORDER: BlockedKind[] = ["content", "keyless", "gate"];

export function createBlockedLog(opts: { log: Logger; windowMs?: number; rates?: Partial<typeof LINE_RATES>; now?: () => number }): BlockedLog {
  const { perRule, ...rates } = { ...LINE_RATES, ...opts.rates };
  const limiter = createLineLimiter<BlockedKind>({
    log: opts.log,
    rates,
    order: KIND_ORDER,
    shareRate: perRule,
    windowMs: opts.windowMs,
    now: opts.now,
    repeated: (label, n, s, others) => `${label}: ${n} more like it in the last ${s} s${otherReasons(others)}`,
    summary: (parts, total, s) => {
      const which = parts.map(([kind, n]) => `${n} ${KIND_WORDS[kind]}`).join(", ");
      return `blocked ${total} more ${total === 1 ? "refusal" : "refusals"} in the last ${s} s, not logged one by one (${which}): the firewall's record counts them (bb-supervise blocked)`;
    },
  });
  return {
    add(r, line) {
      const { key, host, rule, kind } = keyOf(r);
      limiter.add(line, { key, kind, label: `blocked ${host} (${rule})`, reason: r.reason, share: kind === "content" ? (r.under ?? host) : undefined });
    },
    close: () => limiter.close(),
  };
}
