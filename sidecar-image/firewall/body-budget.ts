// How many bytes of request bodies the firewall holds at once, across every connection.
// A body is held whole until it is scanned (inspect.ts), up to 16 MiB as sent and 64 MiB
// inflated, so each request is bounded, but the agent can open any number of them: sixteen
// concurrent 16 MiB uploads took the firewall to 1.16 GiB resident, eight small gzip bodies
// inflating to 60 MiB to 1.24 GiB, and past the bundle's 2 GiB the kernel's OOM killer
// takes the firewall, and with it every connection of the bottle. So each body's bytes are charged
// to one budget as they arrive (its decoded forms as they inflate, and the copies the scan
// worker gets while it scans), and given back when the request is done with them.
//
// Over budget, the request is answered at once, 503 with Retry-After (firewall.ts), its
// bytes dropped, and never forwarded unscanned. Not held until budget frees: its bytes
// keep coming with nowhere to put them, so waiting would mean pausing the agent's socket
// with a deadline and a queue of waiters to bound, and at the end of that wait the answer
// is the same 503. HTTP clients, the LLM SDKs among them, already retry a 503 after its
// Retry-After. The budget is the agent's own to use up: only its own requests wait on it.
//
// A WebSocket message is held for scanning just as a body is (websocket.ts), up to 16 MiB,
// on any number of open sockets, so its bytes take from the same budget: as they arrive,
// with its unmasked copy and the scan worker's, given back once it is forwarded or refused
// or its connection ends. Past the 101 there is no status to answer, so a message that does
// not fit closes its socket with 1013 (Try Again Later, RFC 6455 7.4.1), never forwarded.

/**
 * The default budget: room for sixteen 16 MiB bodies waiting on their answers, eight while
 * the worker scans them (it gets a copy), or two inflating to 64 MiB. What is charged is what the firewall holds;
 * its resident memory peaks near three times that (TLS records, node's copies on the way,
 * garbage not yet collected): 0.8-0.9 GiB under 16 or 32 concurrent 16 MiB uploads.
 */
export const BODY_BUDGET_BYTES = 256 * 1024 * 1024;

/** Seconds a 503 for want of budget asks the agent to wait: uploads on loopback finish in that. */
export const RETRY_AFTER_S = 1;

/** The bytes one request (or one scan) holds, given back together. */
export interface BodyCharge {
  readonly budget: BodyBudget;
  /** Take `n` more bytes from the budget: false, taking none, when it does not have them. */
  take(n: number): boolean;
  /** Give back `n` of the bytes taken (a part let go before the rest; never more than were taken). */
  giveBack(n: number): void;
  /** Give back every byte taken; later calls do nothing. */
  release(): void;
}

export interface BodyBudget {
  readonly limitBytes: number;
  /** Bytes held now, by every request. */
  heldBytes(): number;
  charge(): BodyCharge;
}

export function createBodyBudget(limitBytes = BODY_BUDGET_BYTES): BodyBudget {
  let held = 0;
  const budget: BodyBudget = {
    limitBytes,
    heldBytes: () => held,
    charge() {
      let mine = 0;
      return {
        budget,
        take(n) {
          if (held + n > limitBytes) return false;
          held += n;
          mine += n;
          return true;
        },
        giveBack(n) {
          const back = Math.min(n, mine);
          held -= back;
          mine -= back;
        },
        release() {
          held -= mine;
          mine = 0;
        },
      };
    },
  };
  return budget;
}

/** The reason a request is answered 503 (or a WebSocket closed with 1013) when its body
 * (or message) does not fit the budget. */
export function overBudgetReason(budget: BodyBudget): string {
  const mib = (n: number) => `${Math.round((n / 1048576) * 10) / 10} MiB`;
  return `the firewall's budget for request bodies and WebSocket messages held for scanning (${mib(budget.limitBytes)}, --body-budget) has no room for this one: ${mib(budget.heldBytes())} are held, some of it this one's; send it again once other uploads are done`;
}
