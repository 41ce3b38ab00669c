// The daemon's side of the supervise queue: file a request, then wait a bounded time for
// the operator's decision. Decisions are noticed by polling the request files rather
// than fs.watch: the queue dir is a bind mount, and on Docker Desktop (virtiofs, gRPC
// FUSE) host-side writes often raise no inotify event inside the container; even on
// Linux the operator's atomic rename swaps the inode under a watch on the file. One poll
// serves every waiting call: each pollMs it reads each request some call waits on once,
// however many calls wait on it, so a waiting call costs a timer and no reads of its own.
//
// What one agent can make the daemon hold is bounded: at most maxPending undecided
// requests in the queue, and at most maxWaiting calls in flight (filing or waiting), of
// which at most maxWaitingPerSession from one MCP session. A call past a cap is refused
// at once (BUSY, which the tools turn into an answer pointing at check_request).
import { BbError } from "../../lib/errors.ts";
import { createRequest, listRequests, newRequestId, QUEUE_VERSION, readRequest, RequestId, type QueueRequest } from "../../lib/supervise/queue.ts";

export interface RequestBookOptions {
  queueDir: string;
  /** How long one tool call waits for a decision before answering "pending". */
  waitMs: number;
  pollMs: number;
  now?: () => Date;
  /** Runs after a host request is seen approved, before the agent is told (firewall readiness). */
  afterHostApproved?: () => Promise<void>;
  /** Most requests left pending at once (default MAX_PENDING); more are refused. */
  maxPending?: number;
  /** Most calls in flight at once, in all (default MAX_WAITING). */
  maxWaiting?: number;
  /** Most calls in flight at once from one session (default MAX_WAITING_PER_SESSION). */
  maxWaitingPerSession?: number;
}

/** An agent in a loop must not bury the operator (or fill the host's disk) in requests. */
const MAX_PENDING = 20;
/** Fresh ids tried before filing gives up: a random id is taken only when something made
 * that name first (a file another daemon of the bundle planted, owners.ts), and 32 random
 * bits miss whatever a folder holds this many times over only when it is full beyond use. */
const ID_TRIES = 20;
/** An agent asks for a host or two at a time; these leave room for parallel tool calls
 * while bounding what a flood of batched calls (100 to a POST) holds in memory. */
export const MAX_WAITING = 64;
export const MAX_WAITING_PER_SESSION = 8;

export interface HostAsk {
  host: string;
  reason: string;
  tlsPassthrough: boolean;
}

/** What the tools of one session call. */
export interface Requests {
  /** File (or join an identical pending) host request and wait for its decision. */
  requestHost(ask: HostAsk, signal?: AbortSignal): Promise<QueueRequest>;
  askOperator(question: string, signal?: AbortSignal): Promise<QueueRequest>;
  /** The request as it stands now; null for an unknown id. */
  check(id: string): Promise<QueueRequest | null>;
}

export interface RequestBook extends Requests {
  /** The same queue and waits for one MCP session, which gets a cap of its own on calls in flight. */
  forSession(): Requests;
  /** Calls in flight now, over every session. */
  callsInFlight(): number;
  /** Of those, the calls whose request is filed and which wait for its decision. */
  callsWaiting(): number;
}

/** The calls waiting on one request, and its state as last read. */
interface Watched {
  last: QueueRequest;
  waiters: Set<Waiter>;
}

interface Waiter {
  /** The decision is in: stop the deadline, resolve once `ready` settles. */
  decided(r: QueueRequest, ready: Promise<void>): void;
  failed(e: unknown): void;
}

export function createRequestBook(opts: RequestBookOptions): RequestBook {
  const now = opts.now ?? (() => new Date());
  const maxWaiting = opts.maxWaiting ?? MAX_WAITING;
  const maxPerSession = opts.maxWaitingPerSession ?? MAX_WAITING_PER_SESSION;
  // Counting the pending files and writing a new one is one step: calls made at once
  // would otherwise all see room under the cap (and all file the same host).
  let queue: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(step: () => Promise<T>): Promise<T> => {
    const done = queue.then(step);
    queue = done.catch(() => {});
    return done;
  };

  /** Throws STATE when the operator already has maxPending requests to decide. */
  async function file(fields: Pick<QueueRequest, "kind" | "host" | "tlsPassthrough" | "reason" | "question">): Promise<QueueRequest> {
    const max = opts.maxPending ?? MAX_PENDING;
    const pending = (await listRequests(opts.queueDir)).filter((r) => r.status === "pending").length;
    if (pending >= max) {
      throw new BbError("STATE", `The operator has ${pending} requests from this bottle to decide already (at most ${max} wait at once): check on them with check_request before asking again`);
    }
    for (let tries = 0; tries < ID_TRIES; tries++) {
      const request: QueueRequest = { version: QUEUE_VERSION, id: newRequestId(), ...fields, status: "pending", answer: null, createdAt: now().toISOString(), decidedAt: null };
      if (await createRequest(opts.queueDir, request)) return request;
    }
    throw new BbError("STATE", `Cannot file a request in ${opts.queueDir}: ${ID_TRIES} fresh ids in a row were taken there already`);
  }

  const watched = new Map<string, Watched>();
  let polling: ReturnType<typeof setTimeout> | undefined;

  function schedulePoll() {
    if (polling === undefined && watched.size > 0) polling = setTimeout(() => void poll(), opts.pollMs);
  }

  async function poll() {
    try {
      await Promise.all([...watched].map(([id, w]) => pollOne(id, w)));
    } finally {
      polling = undefined;
      schedulePoll();
    }
  }

  async function pollOne(id: string, w: Watched) {
    let current: QueueRequest | null;
    try {
      current = await readRequest(opts.queueDir, id);
    } catch (e) {
      if (watched.get(id) === w) watched.delete(id);
      for (const waiter of w.waiters) waiter.failed(e);
      return;
    }
    // An operator may delete a file by hand; keep reporting the last state we saw.
    if (current) w.last = current;
    if (w.last.status === "pending") return;
    if (watched.get(id) === w) watched.delete(id);
    if (w.waiters.size === 0) return; // every call on it answered while the file was read
    // The firewall's readiness is waited for once per decision, not once per call.
    const ready = w.last.kind === "host" && w.last.status === "approved" ? (opts.afterHostApproved?.() ?? Promise.resolve()) : Promise.resolve();
    for (const waiter of w.waiters) waiter.decided(w.last, ready);
  }

  function waitForDecision(first: QueueRequest, signal?: AbortSignal): Promise<QueueRequest> {
    if (first.status !== "pending" || opts.waitMs <= 0 || signal?.aborted) return Promise.resolve(first);
    let w = watched.get(first.id);
    if (!w) watched.set(first.id, (w = { last: first, waiters: new Set() }));
    const entry = w;
    return new Promise<QueueRequest>((resolve, reject) => {
      const stop = () => {
        clearTimeout(deadline);
        signal?.removeEventListener("abort", answerNow);
        entry.waiters.delete(waiter);
        if (entry.waiters.size === 0 && watched.get(first.id) === entry) watched.delete(first.id);
      };
      // Out of time, or the client cancelled the call: answer with what we have.
      const answerNow = () => {
        stop();
        resolve(entry.last);
      };
      const waiter: Waiter = {
        decided(r, ready) {
          stop();
          ready.then(() => resolve(r), reject);
        },
        failed(e) {
          stop();
          reject(e);
        },
      };
      const deadline = setTimeout(answerNow, opts.waitMs);
      signal?.addEventListener("abort", answerNow, { once: true });
      entry.waiters.add(waiter);
      schedulePoll();
    });
  }

  let inFlight = 0;

  /** Runs `call` as one call in flight, or refuses it (BUSY) when a cap is reached. */
  function admitted<T>(session: { calls: number } | null, call: () => Promise<T>): Promise<T> {
    const retry = "call check_request with the id of an earlier request instead of asking again, or wait for one to finish";
    const calls = (n: number) => `${n} call${n === 1 ? "" : "s"}`;
    if (session && session.calls >= maxPerSession) {
      return Promise.reject(new BbError("BUSY", `This session has ${calls(session.calls)} waiting for the operator already (at most ${maxPerSession} at once): ${retry}`));
    }
    if (inFlight >= maxWaiting) {
      return Promise.reject(new BbError("BUSY", `This bottle has ${calls(inFlight)} waiting for the operator already (at most ${maxWaiting} at once): ${retry}`));
    }
    inFlight++;
    if (session) session.calls++;
    return call().finally(() => {
      inFlight--;
      if (session) session.calls--;
    });
  }

  function requests(session: { calls: number } | null): Requests {
    return {
      requestHost: (ask, signal) =>
        admitted(session, async () => {
          // An agent retrying after a "pending" answer joins its earlier request instead of
          // piling up duplicates in front of the operator.
          const request = await oneAtATime(async () => {
            const same = (await listRequests(opts.queueDir)).find(
              (r) => r.status === "pending" && r.kind === "host" && r.host === ask.host && r.tlsPassthrough === ask.tlsPassthrough,
            );
            return same ?? (await file({ kind: "host", host: ask.host, tlsPassthrough: ask.tlsPassthrough, reason: ask.reason, question: null }));
          });
          return waitForDecision(request, signal);
        }),
      askOperator: (question, signal) =>
        admitted(session, async () => {
          const request = await oneAtATime(() => file({ kind: "question", host: null, tlsPassthrough: false, reason: null, question }));
          return waitForDecision(request, signal);
        }),
      check: async (id) => (RequestId.safeParse(id).success ? readRequest(opts.queueDir, id) : null),
    };
  }

  return {
    ...requests(null),
    forSession: () => requests({ calls: 0 }),
    callsInFlight: () => inFlight,
    callsWaiting: () => [...watched.values()].reduce((n, w) => n + w.waiters.size, 0),
  };
}
