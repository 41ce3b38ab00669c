// The operator's side of the supervise queue: look requests up and decide them. Approving
// a host request widens the firewall policy and has the firewall re-read it (injected, so
// tests and other backends pass their own) before the request is marked approved: the
// agent is told "approved" only once the new policy is live.
import { BbError, isBbError } from "../errors.ts";
import { clearReloadOwed, recordApproval, reloadOwed, setReloadOwed } from "./approvals.ts";
import { allowHost, disallowHost } from "./policy.ts";
import { asked, listRequests, normalizeHost, readRequest, RequestId, statusText, writeRequest, type QueueRequest } from "./queue.ts";
import { underDecisionLock } from "./lock.ts";
import { noteShown, type Changed } from "./shown.ts";

interface DecideContext {
  queueDir: string;
  /** The bottle, so a hint names a command that works as pasted. */
  slug?: string;
  /** Clock for decidedAt (tests pin it). */
  now?: () => Date;
}

interface ShowContext extends DecideContext {
  /** The bottle's own folder, where what the operator was shown (shown.ts) and the
   * approvals for a resume (approvals.ts) are recorded. */
  bottleDir: string;
}

export interface ApproveContext extends ShowContext {
  policyFile: string;
  /** Make the firewall re-read its policy (bb-supervise: docker kill --signal HUP <bundle>). */
  reloadFirewall: () => Promise<void>;
}

/** Set in the details of a reload error whose bundle is not running (nothing live to change). */
export const BUNDLE_DOWN = "bundleDown";
export const bundleDown = (e: unknown): boolean => isBbError(e) && e.details[BUNDLE_DOWN] === true;

interface ApproveResult {
  request: QueueRequest;
  /** False when the host was in the policy already (the firewall is told to re-read it all the same). */
  policyChanged: boolean;
}

function command(ctx: DecideContext, sub: string): string {
  return `bb-supervise${ctx.slug ? ` --slug ${ctx.slug}` : ""} ${sub}`;
}

function describePending(pending: QueueRequest[]): string {
  if (pending.length === 0) return "there are no pending requests";
  return `pending: ${pending.map((r) => `${r.id} (${r.kind === "host" ? r.host : "question"})`).join(", ")}`;
}

/** The pending request `id`, or an error that says what is pending instead. */
async function pendingRequest(queueDir: string, id: string): Promise<QueueRequest> {
  const valid = RequestId.safeParse(id);
  const request = valid.success ? await readRequest(queueDir, id) : null;
  if (!request) {
    const pending = (await listRequests(queueDir)).filter((r) => r.status === "pending");
    throw new BbError("NOT_FOUND", `No supervise request ${JSON.stringify(id)} in ${queueDir}; ${describePending(pending)}`, {
      details: { id, pending: pending.map((r) => r.id) },
    });
  }
  if (request.status !== "pending") {
    throw new BbError("STATE", `Request ${id} was already ${statusText(request)} at ${request.decidedAt ?? "an unknown time"}; nothing to do`, {
      details: { id, status: request.status },
    });
  }
  return request;
}

/** The sentence that says a request changed since the operator was first shown it, and what to do. */
export function changedText(ctx: DecideContext, { request, was }: Changed): string {
  const now = asked(request);
  return `Request ${request.id} changed after bb-supervise first showed it: it asked for ${was}, ${now === was ? "with other words or time" : `and now asks for ${now}`}. supervise never rewrites a request, so something in the bundle did: it cannot be approved. Deny it (\`${command(ctx, "deny")} ${request.id}\`); the agent may ask again`;
}

/**
 * The requests to show the operator (pending ones, or `all`), oldest first, with the
 * pending ones recorded as shown (shown.ts), and those that changed since first shown.
 */
export async function showRequests(ctx: ShowContext, opts: { all?: boolean } = {}): Promise<{ requests: QueueRequest[]; changed: Changed[] }> {
  const { requests, changed } = await oneDecisionAtATime(ctx, async () => {
    const requests = await listRequests(ctx.queueDir);
    return { requests, changed: await noteShown(ctx.bottleDir, requests) };
  });
  return { requests: requests.filter((r) => opts.all || r.status === "pending"), changed };
}

/** `fn` under the bottle's decision lock (lock.ts) when the bottle's folder is known: each
 * decision reads and writes back the request, the policy and the bottle's records whole. */
function oneDecisionAtATime<T>(ctx: { bottleDir?: string }, fn: () => Promise<T>): Promise<T> {
  return ctx.bottleDir ? underDecisionLock(ctx.bottleDir, fn) : fn();
}

function decided(request: QueueRequest, status: "approved" | "denied", answer: string | null, ctx: DecideContext): QueueRequest {
  return { ...request, status, answer, decidedAt: (ctx.now ?? (() => new Date()))().toISOString() };
}

export function approveRequest(ctx: ApproveContext, id: string): Promise<ApproveResult> {
  return oneDecisionAtATime(ctx, () => approveLocked(ctx, id));
}

async function approveLocked(ctx: ApproveContext, id: string): Promise<ApproveResult> {
  const request = await pendingRequest(ctx.queueDir, id);
  if (request.kind !== "host") {
    throw new BbError("USAGE", `Request ${id} is a question, not a host request: reply with \`${command(ctx, "answer")} ${id} TEXT\``);
  }
  // What is granted is what this read found, and only if that is what the operator was
  // first shown: the file may have been rewritten since their list.
  const [changed] = await noteShown(ctx.bottleDir, [request]);
  if (changed) throw new BbError("STATE", changedText(ctx, changed), { details: { id, shown: changed.was, now: asked(request) } });
  // The queue schema guarantees a host that normalizes; the policy gets its plain form.
  const host = normalizeHost(request.host!)!;
  const policyChanged = await allowHost(ctx.policyFile, { host, tlsPassthrough: request.tlsPassthrough });
  // Even when the file had the host already: an approval retried after a failed reload
  // must still get it into the running firewall.
  try {
    await ctx.reloadFirewall();
  } catch (e) {
    // Still pending, so the file must not allow the host either: a firewall that restarts
    // (a crash, a resume) would read it, and a later deny would leave it there.
    const undone = policyChanged ? `; ${host} is out of ${ctx.policyFile} again` : "";
    if (policyChanged) await disallowHost(ctx.policyFile, host);
    // An engine that did not answer in time stays a timeout (exit 124), as in every tool.
    // Its signal may still have landed, with the host in the file: a deny must reload.
    if (isBbError(e) && e.code === "TIMEOUT") {
      await setReloadOwed(ctx.bottleDir, `approve ${id} (${host}) timed out: ${e.message}`);
      throw new BbError(
        "TIMEOUT",
        `Request ${id} stays pending${undone}: the firewall may have re-read the policy with it before the engine stopped answering: ${e.message}\nOnce the engine answers, approve it again, or deny it (which then has the firewall re-read the policy without it)`,
        { cause: e },
      );
    }
    throw new BbError(
      "STATE",
      `Request ${id} stays pending${undone}: signalling the firewall to re-read its policy with ${host} failed (${(e as Error).message}). Check the bottle is running (bb-list), then approve again`,
      { cause: e },
    );
  }
  await clearReloadOwed(ctx.bottleDir);
  const done = decided(request, "approved", null, ctx);
  // Recorded for a resume only once the host is live.
  await recordApproval(ctx.bottleDir, { host, tlsPassthrough: request.tlsPassthrough, request: id, approvedAt: done.decidedAt! });
  await writeRequest(ctx.queueDir, done);
  return { request: done, policyChanged };
}

/**
 * Deny leaves the policy be: a pending request's host is never in it. Only after an
 * approval that timed out (reloadOwed) may the running firewall allow it; then the firewall
 * re-reads the policy, once the denial is recorded (the agent is told at once either way).
 */
export function denyRequest(ctx: DecideContext & Partial<Pick<ApproveContext, "bottleDir" | "reloadFirewall">>, id: string, reason: string | null): Promise<QueueRequest> {
  return oneDecisionAtATime(ctx, () => denyLocked(ctx, id, reason));
}

async function denyLocked(ctx: DecideContext & Partial<Pick<ApproveContext, "bottleDir" | "reloadFirewall">>, id: string, reason: string | null): Promise<QueueRequest> {
  const request = await pendingRequest(ctx.queueDir, id);
  const done = decided(request, "denied", reason, ctx);
  await writeRequest(ctx.queueDir, done);
  if (request.kind === "host" && ctx.bottleDir && ctx.reloadFirewall && reloadOwed(ctx.bottleDir)) {
    try {
      await ctx.reloadFirewall();
    } catch (e) {
      if (!bundleDown(e)) {
        throw new BbError(
          isBbError(e) && e.code === "TIMEOUT" ? "TIMEOUT" : "STATE",
          `Denied ${id}, but the firewall, which an earlier approval that timed out may have opened to ${request.host}, could not be made to re-read its policy: ${(e as Error).message}\nUntil it does (the next approve, or a restart of the bottle), it may still let ${request.host} through`,
          { cause: e },
        );
      }
    }
    await clearReloadOwed(ctx.bottleDir);
  }
  return done;
}

export function answerRequest(ctx: DecideContext & { bottleDir?: string }, id: string, text: string): Promise<QueueRequest> {
  return oneDecisionAtATime(ctx, async () => {
    const request = await pendingRequest(ctx.queueDir, id);
    if (request.kind !== "question") {
      throw new BbError("USAGE", `Request ${id} asks for host ${request.host}, not a question: use \`${command(ctx, "approve")} ${id}\` or \`${command(ctx, "deny")} ${id}\``);
    }
    const done = decided(request, "approved", text, ctx);
    await writeRequest(ctx.queueDir, done);
    return done;
  });
}
