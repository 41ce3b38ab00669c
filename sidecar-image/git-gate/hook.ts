// `git-gate hook pre-receive`: run by the pre-receive hook inside `git receive-pack`
// (cwd: the gate's repo, objects still in quarantine). Checks the push policy, then
// pushes the same updates to upstream from here (the quarantine environment lets git see
// the new objects) and only lets the gate's refs move when upstream took them. Every
// line it writes on stderr reaches the agent as "remote: git-gate: ..."; what the operator
// must see goes to the gate's log as well (operatorLog).
import { Buffer } from "node:buffer";
import { writeSync } from "node:fs";
import process from "node:process";
import { createScanner } from "../../lib/dlp/mod.ts";
import { BbError } from "../../lib/errors.ts";
import { createLogger, type Logger } from "../../lib/log.ts";
import { redactCredentials, run } from "../../lib/proc.ts";
import { GitGateConfig, readConfig } from "../../lib/sidecar-config.ts";
import type { Git } from "./diff.ts";
import { listUpstream, upstreamAliases, type Listing } from "./aliases.ts";
import { landedUpdates, refNames } from "./landed.ts";
import { deletedRefs } from "./deleted.ts";
import { checkPush, judgeMove, NO_REPLACE, parseUpdates, ZERO, type RefUpdate, type Violation } from "./policy.ts";
import { hiddenCreates } from "./dangling.ts";
import { unheldTips } from "./published.ts";
import { createRegistry, fetchMirror, redactUrl, upstreamEnv, type Repo } from "./repos.ts";
import { printable } from "../../lib/printable.ts";
import { HOOK_ENV } from "./server.ts";

interface HookOptions {
  /** The hook's stdin ("<old> <new> <ref>" lines). */
  input: string;
  env: Record<string, string | undefined>;
  /** The repo receive-pack runs in. */
  cwd: string;
  /** Messages for the pusher (default: stderr, always shown). */
  out?: Logger;
  /** How long forwarding to upstream may take before the push fails (default 10 min). */
  forwardTimeoutMs?: number;
  /** A line for the gate's log, which the operator reads (default: to the fd git-gate gave, HOOK_ENV.log, if any). */
  operator?: (line: string) => void;
}

/**
 * Lines for the gate's log: written to the fd git-gate passed receive-pack (HOOK_ENV.log),
 * since everything on the hook's stderr goes to the agent. Without one (the hook run
 * other than by git-gate), nowhere.
 */
function operatorLog(env: Record<string, string | undefined>): (line: string) => void {
  const fd = Number(env[HOOK_ENV.log]);
  if (!Number.isInteger(fd) || fd < 3) return () => {};
  return (line) => {
    try {
      writeSync(fd, `${printable(line)}\n`);
    } catch {
      // A gate gone while its push hook runs has no log to write to.
    }
  };
}

const MAX_SHOWN = 20;
// A push the agent waits on must end: git commands that only read the gate's repo get
// CHECK_TIMEOUT_MS each, forwarding (network) FORWARD_TIMEOUT_MS, the same as a clone.
const CHECK_TIMEOUT_MS = 300_000;
const FORWARD_TIMEOUT_MS = 600_000;

function required(env: Record<string, string | undefined>, name: string): string {
  const v = env[name];
  if (!v) throw new BbError("CONFIG", `push refused: ${name} is not set (this hook only runs under git-gate's receive-pack)`);
  return v;
}

type RunGit = (args: string[], env?: Record<string, string | undefined>, limit?: { timeoutMs: number; what: string }, input?: string) => Promise<{ code: number; stdout: string; stderr: string }>;

type RemoteEnv = Record<string, string | undefined>;

/** receive-pack's quarantine taken out of a git's environment: what it fetches or moves is the repo's own. */
const QUARANTINE_OFF = { GIT_QUARANTINE_PATH: undefined, GIT_OBJECT_DIRECTORY: undefined, GIT_ALTERNATE_OBJECT_DIRECTORIES: undefined } as const;

async function forward(repo: Repo, updates: RefUpdate[], git: RunGit, env: RemoteEnv, timeoutMs: number) {
  const args = ["push", "--atomic", "--porcelain", repo.url];
  for (const u of updates) {
    // The lease is what lets a non-fast-forward through, and only when upstream is still
    // at the old value the policy judged. No "+" on the refspec: a forced refspec
    // overrides the lease, and upstream would take any rewrite.
    args.push(`--force-with-lease=${u.ref}:${ZERO.test(u.old) ? "" : u.old}`);
    args.push(ZERO.test(u.new) ? `:${u.ref}` : `${u.new}:${u.ref}`);
  }
  return git(args, env, { timeoutMs, what: `Cannot forward the push to upstream ${repo.key}` });
}

/** Returns the hook's exit code: 0 lets receive-pack update the gate's refs. */
export async function preReceive(opts: HookOptions): Promise<number> {
  const out = opts.out ?? createLogger({ level: "info", prefix: "git-gate: " });
  const operator = opts.operator ?? operatorLog(opts.env);
  const config = await readConfig(GitGateConfig, required(opts.env, HOOK_ENV.config));
  const key = required(opts.env, HOOK_ENV.repo);
  const dirs = { data: required(opts.env, HOOK_ENV.data), identities: opts.env[HOOK_ENV.identities] ?? null };
  const repo = createRegistry(config, dirs).repos.get(key);
  if (!repo) throw new BbError("CONFIG", `push refused: ${key} is not a declared repo`);
  const updates = parseUpdates(opts.input);

  const runGit: RunGit = (args, env = {}, limit = { timeoutMs: CHECK_TIMEOUT_MS, what: `Cannot check the push to ${repo.key}` }, input) =>
    run(["git", ...args], { cwd: opts.cwd, env: { ...NO_REPLACE, ...env }, expect: [0, 1, 128], input, ...limit });
  const git: Git = async (args, input) => {
    const r = await runGit(args, {}, undefined, input);
    if (r.code !== 0) throw new BbError("SUBPROCESS", `git ${args.join(" ")} failed: ${r.stderr.trim()}`);
    return r.stdout;
  };
  const isAncestor = async (a: string, b: string) => (await runGit(["merge-base", "--is-ancestor", a, b])).code === 0;
  const sensitive = config.dlp.sensitive.map((s) => ({ name: s.name, value: opts.env[s.slot] ?? "" })).filter((s) => s.value);
  // For the git that talks to upstream: the quarantine's object dirs stay set so
  // pack-objects finds the pushed objects, but GIT_QUARANTINE_PATH must not leak into a
  // local upstream's receive-pack (file://), which would then refuse to update its refs.
  // Pushing to a URL moves no local ref.
  const env: RemoteEnv = { ...upstreamEnv(repo.upstream, dirs), GIT_QUARANTINE_PATH: undefined };
  const forwardTimeoutMs = opts.forwardTimeoutMs ?? FORWARD_TIMEOUT_MS;
  const list = (what: string) => listUpstream(repo.url, (args, extra) => runGit(args, { ...env, ...extra }, { timeoutMs: forwardTimeoutMs, what }), what);
  const listing = await list(`Cannot forward the push to upstream ${repo.key}: cannot list its refs`);
  // What upstream's tips reach counts as published (published.ts): ones the gate does not
  // hold yet are fetched, objects only. One it still does not hold then counts for nothing
  // (the stricter judgement), and the agent and the operator are told, or a refusal of what
  // such a tip published would read as the policy's alone.
  const unheld = await unheldTips(git, listing.values);
  if (unheld.length) {
    const fetched = await runGit(["fetch", "--no-tags", "--no-write-fetch-head", "--quiet", repo.url, ...unheld], { ...env, ...QUARANTINE_OFF }, { timeoutMs: forwardTimeoutMs, what: `Cannot fetch upstream ${repo.key}'s new tips` }).catch(
      (e: Error) => ({ code: -1, stdout: "", stderr: e.message }),
    );
    const missing = await unheldTips(git, listing.values);
    const line = missing.length ? unheldTold(repo, missing, fetched.code === 0 ? null : lastWord(upstreamSaid(repo, fetched))) : null;
    if (line) {
      out.warn(line);
      operator(line);
    }
  }
  const deleted = deletedRefs(opts.cwd);
  const violations = await checkPush(updates, {
    policy: config.push,
    scanner: config.push.dlp ? createScanner({ disabled: config.dlp.disabled, sensitive }) : null,
    git,
    isAncestor,
    upstream: listing.values,
    deletedAt: deleted.at,
  });
  if (!violations.length) {
    const aliases = upstreamAliases(listing, updates.map((u) => u.ref));
    for (const u of updates) {
      for (const target of aliases.targets.get(u.ref) ?? []) {
        if (aliases.protocol === "v2") {
          violations.push({ rule: "allowedRefs", ref: u.ref, message: `upstream holds ${u.ref} as a symbolic ref to ${target}, so a push to it would move ${target}: push to ${target} itself` });
          continue;
        }
        // A fast-forward the policy allows under the target's name too stays allowed.
        for (const r of await judgeMove({ ...u, ref: target }, config.push, isAncestor)) {
          violations.push({ rule: r.rule, ref: u.ref, message: `upstream speaks protocol v0, which hides symbolic refs, and has ${u.ref} at the same commit as ${target}: if it is a symbolic ref to ${target}, the push moves ${target}, which the policy refuses: ${r.message}` });
        }
      }
    }
  }
  if (violations.length) return tell(out, `push to ${repo.key} rejected by the bottle's push policy; nothing was sent upstream:`, violations);

  // A delete is recorded before it is sent: a record of one that then fails upstream
  // only judges a later create of a ref that still exists (refused as stale anyway).
  for (const u of updates) if (ZERO.test(u.new) && !ZERO.test(u.old)) await deleted.record(u.ref, u.old);
  const pushed = await forward(repo, updates, runGit, env, forwardTimeoutMs).catch((e: Error) => e);
  let landed = updates;
  let after: Listing | Error | null = null;
  if (pushed instanceof Error || pushed.code !== 0) {
    // git's exit code is the push as the gate's git saw it (landed.ts): upstream's refs say
    // what it took.
    const failure = upstreamSaid(repo, pushed instanceof Error ? { stdout: "", stderr: pushed.message } : pushed);
    after = await list(`Cannot list upstream ${repo.key} after the push failed`).catch((e: Error) => e);
    if (after instanceof Error) {
      out.info(`the push to ${repo.key} failed, and git-gate could not list upstream after it to see whether upstream took any of it; the gate is unchanged (fetch to see what upstream holds):`);
      say(out, failure);
      say(out, after.message);
      return 1;
    }
    landed = landedUpdates(updates, after.values);
    if (!landed.length) {
      out.info(`upstream refused the push to ${repo.key}; the gate is unchanged:`);
      say(out, failure);
      return 1;
    }
    out.info(`git reported the push to ${repo.key} as failed, but upstream holds ${refNames(landed)} as pushed:`);
    say(out, failure);
  }
  const created = landed.filter((u) => ZERO.test(u.old) && !ZERO.test(u.new));
  /**
   * Delete upstream, again, refs this push made (each at the value it made it with); the
   * names of those upstream no longer holds. A delete git reports failed (a timeout, a
   * connection lost) may have landed all the same, so upstream's refs say, as for a failed
   * forward (landed.ts); when they cannot be listed either, none is gone (the stricter report).
   */
  const deleteAgain = async (made: { ref: string; new: string }[]): Promise<Undone> => {
    const deletes = made.map((m) => ({ old: m.new, new: "0", ref: m.ref }));
    const r = await forward(repo, deletes, runGit, env, forwardTimeoutMs).catch((e: Error) => ({ code: -1, stdout: "", stderr: e.message }));
    if (r.code === 0) return { gone: made.map((m) => m.ref), failure: null, listing: null };
    const failure = upstreamSaid(repo, r);
    const now = await list(`Cannot list upstream ${repo.key} after deleting ${refNames(deletes)} again failed`).catch((e: Error) => e);
    if (now instanceof Error) return { gone: [], failure: `${failure}\n${now.message}`, listing: null };
    return { gone: landedUpdates(deletes, now.values).map((u) => u.ref), failure, listing: now };
  };
  // A created ref's delete record goes once the create stands: one taken back below leaves
  // the ref deleted where it was.
  const stand = async (kept: RefUpdate[]) => {
    for (const u of created) if (kept.includes(u)) await deleted.forget(u.ref);
  };
  /**
   * The end of a push the gate refuses when upstream keeps `kept` of it: receive-pack moves
   * none of the gate's refs, so the gate fetches its mirror again to hold what upstream
   * holds, and says which refs landed. The hook's exit code: 1.
   */
  const refusedButKept = async (kept: RefUpdate[]) => {
    if (!kept.length) return 1;
    await stand(kept);
    const missed = updates.filter((u) => !kept.includes(u));
    const fetched = await fetchMirror({ repo, dirs, allowedRefs: config.push.allowedRefs, env: QUARANTINE_OFF }).then(() => null, (e: Error) => e);
    const mirror = fetched ? `git-gate could not fetch its mirror again, so it shows them only after the next fetch from upstream succeeds:` : "git-gate's mirror now holds what upstream holds (fetch to see it)";
    out.info(`  upstream keeps ${refNames(kept)} as pushed; ${mirror}`);
    if (fetched) say(out, `  ${fetched.message}`);
    if (missed.length) out.info(`  upstream does not hold ${refNames(missed)} as pushed`);
    return 1;
  };
  if (created.length) {
    after ??= await list(`Cannot list upstream ${repo.key} after the push`).catch((e: Error) => e);
    if (after instanceof Error) {
      const { deleted, relisted } = await unchecked({ out, operator, repo, updates, created, listingFailed: after, undo: () => deleteAgain(created) });
      if (!relisted) {
        if (deleted.length) return refusedButKept(updates.filter((u) => !deleted.includes(u)));
        await stand(updates);
        return 0;
      }
      // Upstream listed its refs after the failed delete: the push is checked by that listing.
      after = relisted;
      landed = landed.filter((u) => !deleted.includes(u));
    }
    const refused: Violation[] = [];
    const undo: { ref: string; new: string; via: string }[] = [];
    for (const h of hiddenCreates(listing, after, landed)) {
      const rules = await judgeMove({ old: "0", new: h.new, ref: h.ref }, config.push, isAncestor);
      if (rules.length) undo.push(h);
      for (const r of rules) {
        refused.push({ rule: r.rule, ref: h.via, message: `upstream holds ${h.via} as a symbolic ref to ${h.ref}, which did not exist (so upstream listed neither), and the push created ${h.ref}, which the policy refuses: ${r.message}` });
      }
    }
    if (undo.length) {
      const { gone, failure } = await deleteAgain(undo);
      const standing = undo.filter((h) => !gone.includes(h.ref)).map((h) => h.ref).join(", ");
      const outcome = standing ? `git-gate could not delete ${standing} again: tell upstream's maintainers` : `git-gate deleted ${gone.join(", ")} again`;
      if (standing) operator(`${standing} stands upstream though the policy refuses it: the push created it through a symbolic ref upstream, and git-gate could not delete it again; delete it upstream`);
      tell(out, `upstream took the push to ${repo.key}, but it created a ref through a symbolic ref upstream; ${outcome}:`, refused);
      sayDeleteFailure(out, { tried: undo.map((h) => h.ref), gone, failure });
      // A symref whose target was deleted again is dangling upstream once more: not kept.
      return refusedButKept(landed.filter((u) => !undo.some((h) => h.via === u.ref && gone.includes(h.ref))));
    }
  }
  if (landed.length < updates.length) {
    out.info(`upstream took only part of the push to ${repo.key}; git-gate refuses the push, so its refs follow upstream's instead:`);
    return refusedButKept(landed);
  }
  out.info(`pushed ${refNames(updates)} to upstream ${repo.key}`);
  await stand(updates);
  return 0;
}

/**
 * What deleting refs again did upstream: the names upstream no longer holds, what git said
 * if it reported the delete as failed, and then upstream's refs as listed to see what it
 * took (when that listing worked).
 */
interface Undone {
  gone: string[];
  failure: string | null;
  listing: Listing | null;
}

/**
 * Upstream took the push, but the listing that finds refs made through a dangling symref
 * (dangling.ts) failed, so what `created` made upstream is not known: perhaps a ref the
 * policy refuses, under another name. Unchecked, it must not stand, so the created refs
 * are deleted again, each at the value pushed (a delete through such a symref deletes its
 * target, the hidden ref with it), and the push is refused (the caller then brings the
 * gate's refs to what upstream keeps of the rest) and the agent pushes again. Only when
 * upstream holds a created ref still after that delete does it stand, reported with a
 * warning naming what went unchecked (to the operator too); when none was deleted the push
 * is reported as landed, and the gate takes it too, so it holds what upstream holds. But
 * when upstream could be listed after that failed delete, the refs that stand are checked
 * by that listing instead (relisted), as if the listing after the push had worked.
 * Returns the created updates deleted again (none: the push stands), and that listing.
 */
async function unchecked(o: {
  out: Logger;
  operator: (line: string) => void;
  repo: Repo;
  updates: RefUpdate[];
  created: RefUpdate[];
  listingFailed: Error;
  undo: () => Promise<Undone>;
}): Promise<{ deleted: RefUpdate[]; relisted: Listing | null }> {
  const names = refNames(o.created);
  const why = `upstream took the push to ${o.repo.key}, but git-gate could not list upstream's refs after it, so it could not check that creating ${names} made no other ref through a symbolic ref upstream whose target did not exist`;
  const { gone, failure, listing } = await o.undo();
  const deleted = o.created.filter((u) => gone.includes(u.ref));
  const standing = refNames(o.created.filter((u) => !gone.includes(u.ref)));
  if (!standing) {
    o.out.info(`${why}; git-gate deleted ${names} again (push again):`);
    say(o.out, o.listingFailed.message);
    sayDeleteFailure(o.out, { tried: o.created.map((u) => u.ref), gone, failure });
    return { deleted, relisted: null };
  }
  if (listing) {
    o.out.info(`${why}; nor could it delete ${standing} again, but it could list upstream's refs after that, so it checks the push by that listing:`);
    say(o.out, o.listingFailed.message);
    sayDeleteFailure(o.out, { tried: o.created.map((u) => u.ref), gone, failure });
    return { deleted, relisted: listing };
  }
  o.out.warn(`${why}; nor could it delete ${standing} again: ask upstream's maintainers to check what ${standing} is upstream:`);
  o.operator(`${standing} stands upstream unchecked: git-gate could not list upstream's refs after the push, so it could not check that creating it made no other ref through a symbolic ref upstream, nor could it delete it again; check what ${standing} is upstream`);
  say(o.out, o.listingFailed.message);
  sayDeleteFailure(o.out, { tried: o.created.map((u) => u.ref), gone, failure });
  if (deleted.length) o.out.info(`  git-gate deleted ${refNames(deleted)} again (push again)`);
  else o.out.info(`pushed ${refNames(o.updates)} to upstream ${o.repo.key}`);
  return { deleted, relisted: null };
}

/**
 * What git said when it reported deleting `tried` again as failed (nothing when it did
 * not): why those upstream still holds could not be deleted, or, when none is left, that
 * upstream took the delete all the same.
 */
function sayDeleteFailure(out: Logger, o: { tried: string[]; gone: string[]; failure: string | null }) {
  if (!o.failure) return;
  const standing = o.tried.filter((ref) => !o.gone.includes(ref));
  if (standing.length) return say(out, `Cannot delete ${standing.join(", ")} again: ${o.failure}`);
  say(out, `git reported deleting ${o.tried.join(", ")} again as failed, but upstream no longer holds ${o.tried.length > 1 ? "them" : "it"}:\n  ${o.failure.replaceAll("\n", "\n  ")}`);
}

/**
 * One line on the listed tips the gate still does not hold after fetching them: the fetch
 * failed (git's reason), or, when it succeeded, upstream moved those refs between the
 * listing and the fetch (a fast-forward brings the listed commit along; a rewrite does not).
 * The fetch is by name, not by the listed object id: a server that hides what its refs no
 * longer reach (protocol v0 refuses a want of a non-tip by default) would refuse the id,
 * and a tip rewritten away is no longer published anyway.
 */
function unheldTold(repo: Repo, refs: string[], failure: string | null): string {
  const many = refs.length > 1;
  const names = namesShown(refs);
  const what = failure === null
    ? `${names} moved on upstream ${repo.key} while git-gate fetched ${many ? "them" : "it"} (the gate got ${many ? "their new tips, not those" : "its new tip, not the one"} upstream listed)`
    : `could not fetch ${names} from upstream ${repo.key} (the gate does not hold ${many ? "their tips" : "its tip"})`;
  const why = failure ?? "push again to be judged by upstream's tips as they are now";
  return `${what}, so the push was checked without ${many ? "them" : "it"}: commits only ${many ? "they reach" : "it reaches"} count as new, not as published (${why})`;
}

/** What upstream's git said of a failed push, without credentials. */
function upstreamSaid(repo: Repo, r: { stdout: string; stderr: string }): string {
  return redactCredentials(`${r.stdout}\n${r.stderr}`.replaceAll(repo.url, redactUrl(repo.url))).trim();
}

/** "a, b, c and 4 more" of ref names, for one line. */
function namesShown(refs: string[]): string {
  const shown = refs.slice(0, 3).join(", ");
  return refs.length > 3 ? `${shown} and ${refs.length - 3} more` : shown;
}

/** Git's conclusion in `text` (its last "fatal:" line, else its last line): one line's reason. */
function lastWord(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  return printable([...lines].reverse().find((l) => l.startsWith("fatal:")) ?? lines.at(-1) ?? "git said nothing");
}

/** Say `text` to the pusher, each line indented and made printable. */
function say(out: Logger, text: string) {
  for (const line of text.split("\n").filter((l) => l.trim())) out.info(printable(`  ${line}`));
}

/** Say `header` and each violation (the first MAX_SHOWN) to the pusher; the hook's exit code: 1. */
function tell(out: Logger, header: string, violations: Violation[]): number {
  out.info(header);
  for (const v of violations.slice(0, MAX_SHOWN)) out.info(printable(`  [${v.rule}] ${v.ref}: ${v.message}`));
  if (violations.length > MAX_SHOWN) out.info(`  ... and ${violations.length - MAX_SHOWN} more`);
  return 1;
}

/** Entry for `git-gate hook pre-receive`: stdin from receive-pack, env from git-gate. */
export async function runPreReceiveHook(): Promise<number> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return preReceive({ input: Buffer.concat(chunks).toString("utf8"), env: process.env, cwd: process.cwd() });
}
