// The daemon's side of the supervise queue: file a request, then wait a bounded time for
// the operator's decision. Decisions are noticed by polling the request's file rather
// than fs.watch: the queue dir is a bind mount, and on Docker Desktop (virtiofs, gRPC
// FUSE) host-side writes often raise no inotify event inside the container; even on
// Linux the operator's atomic rename swaps the inode under a watch on the file. One
// small read per waiting call every pollMs is cheap and works everywhere.
import { setTimeout as sleep } from "node:timers/promises";
import { BbError } from "../../lib/errors.ts";
import { listRequests, newRequestId, QUEUE_VERSION, readRequest, RequestId, writeRequest, type QueueRequest } from "../../lib/supervise/queue.ts";

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
}

/** An agent in a loop must not bury the operator (or fill the host's disk) in requests. */
const MAX_PENDING = 20;

export interface HostAsk {
  host: string;
  reason: string;
  tlsPassthrough: boolean;
}

export interface RequestBook {
  /** File (or join an identical pending) host request and wait for its decision. */
  requestHost(ask: HostAsk, signal?: AbortSignal): Promise<QueueRequest>;
  askOperator(question: string, signal?: AbortSignal): Promise<QueueRequest>;
  /** The request as it stands now; null for an unknown id. */
  check(id: string): Promise<QueueRequest | null>;
}

export function createRequestBook(opts: RequestBookOptions): RequestBook {
  const now = opts.now ?? (() => new Date());
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
    let id = newRequestId();
    while (await readRequest(opts.queueDir, id)) id = newRequestId();
    const request: QueueRequest = { version: QUEUE_VERSION, id, ...fields, status: "pending", answer: null, createdAt: now().toISOString(), decidedAt: null };
    await writeRequest(opts.queueDir, request);
    return request;
  }

  async function waitForDecision(first: QueueRequest, signal?: AbortSignal): Promise<QueueRequest> {
    const deadline = Date.now() + opts.waitMs;
    let current = first;
    while (current.status === "pending" && Date.now() < deadline && !signal?.aborted) {
      try {
        await sleep(Math.min(opts.pollMs, Math.max(0, deadline - Date.now())), undefined, { signal });
      } catch {
        break; // the client cancelled the call: answer with what we have
      }
      // An operator may delete a file by hand; keep reporting the last state we saw.
      current = (await readRequest(opts.queueDir, first.id)) ?? current;
    }
    if (current.kind === "host" && current.status === "approved" && first.status === "pending") await opts.afterHostApproved?.();
    return current;
  }

  return {
    async requestHost(ask, signal) {
      // An agent retrying after a "pending" answer joins its earlier request instead of
      // piling up duplicates in front of the operator.
      const request = await oneAtATime(async () => {
        const same = (await listRequests(opts.queueDir)).find(
          (r) => r.status === "pending" && r.kind === "host" && r.host === ask.host && r.tlsPassthrough === ask.tlsPassthrough,
        );
        return same ?? (await file({ kind: "host", host: ask.host, tlsPassthrough: ask.tlsPassthrough, reason: ask.reason, question: null }));
      });
      return waitForDecision(request, signal);
    },
    async askOperator(question, signal) {
      const request = await oneAtATime(() => file({ kind: "question", host: null, tlsPassthrough: false, reason: null, question }));
      return waitForDecision(request, signal);
    },
    check: async (id) => (RequestId.safeParse(id).success ? readRequest(opts.queueDir, id) : null),
  };
}
