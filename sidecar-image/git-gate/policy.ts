// The push policy, checked in pre-receive before anything goes upstream. Each violation
// names its rule and the ref (and path) so the agent's terminal shows why:
//   allowedRefs       the ref must be a well-formed name and match one pattern (when any
//                     are given);
//   oldValue          the old value the pusher names must be the gate's: the branch and
//                     force-push checks judge the move from there;
//   refTarget         the ref must point at a commit (or at tags of one): a blob or tree
//                     carries content no path or history check can see;
//   protectedBranches no delete, no non-fast-forward update, and no spelling that differs
//                     only in case (the same ref on a case-insensitive upstream, its
//                     "refs/heads/" too); a "refs/..." pattern protects tags as well;
//   protectedPaths    no new commit may change a matching path, and no update may drop
//                     a change the ref's commits made to one (a rewind or a replaced
//                     history: what a protected branch refuses outright); a ref the gate
//                     deleted, or saw deleted upstream, and that is created again counts
//                     as moved from where it was (deleted.ts, under any spelling of its
//                     name), so a delete and a create are no rewind in two pushes;
//   fileSize          no new commit may add a file of MAX_FILE_MIB or more: its diff is
//                     read whole, several times over, to be checked;
//   commitFormat      no new commit may carry a header git reads differently from a
//                     naive reader (a "parent" line after author/committer), nor an
//                     encoding other than UTF-8 (git re-encodes such a message for every
//                     reader, so the text scanned is not the text they see);
//   dlp               no new commit may add a detectable secret (in a file, a path name,
//                     its message or its header lines), nor may the new commits of one
//                     ref together (a key split across them); no pushed tag may carry
//                     one, and no ref name either (upstream keeps the name as it is).
// "New" commits are those no branch or tag of upstream reaches now (published.ts): what
// upstream's writers have not published, or took back. Other refs do not count: anyone may
// put a commit under refs/pull/* (a fork's pull request).
//
// Every git command here runs with replace refs off (NO_REPLACE): a refs/replace/<X>
// would make the checks read another commit than the X that is forwarded upstream. Such
// refs are refused too, for upstream's clones that do honour them.
import type { PushPolicy } from "../../lib/plan/schema.ts";
import type { Finding, Scanner } from "../../lib/dlp/mod.ts";
import { addedOver, commitChanges, type CommitChanges, droppedPaths, type Git, refValues } from "./diff.ts";
import { pathMatches, refMatches } from "./glob.ts";
import { beyond, publishedTips } from "./published.ts";
import type { DeletedRef } from "./deleted.ts";

export const ZERO = /^0+$/;

/** Environment for every git the gate runs on pushed objects: refs/replace/* ignored. */
export const NO_REPLACE = { GIT_NO_REPLACE_OBJECTS: "1" } as const;

export interface RefUpdate {
  old: string;
  new: string;
  ref: string;
}

export type Rule = "allowedRefs" | "oldValue" | "refTarget" | "protectedBranches" | "protectedPaths" | "fileSize" | "commitFormat" | "dlp";

/** The largest file a push may add: checking one reads its diff whole, several times over. */
const MAX_FILE_MIB = 32;

/** Files of MAX_FILE_MIB or more that `target` brings beyond the published `tips`. */
async function oversizedFiles(git: Git, target: string, tips: string[]): Promise<{ path: string; mib: number }[]> {
  const fresh = beyond(target, tips);
  const omitted = (await git(["rev-list", "--objects", `--filter=blob:limit=${MAX_FILE_MIB}m`, "--filter-print-omitted", ...fresh.args], fresh.input))
    .split("\n")
    .filter((l) => l.startsWith("~"))
    .map((l) => l.slice(1).trim());
  if (!omitted.length) return [];
  const pathOf = new Map<string, string>();
  for (const line of (await git(["rev-list", "--objects", ...fresh.args], fresh.input)).split("\n")) {
    const space = line.indexOf(" ");
    if (space > 0) pathOf.set(line.slice(0, space), line.slice(space + 1));
  }
  return Promise.all(omitted.map(async (oid) => ({ path: pathOf.get(oid) ?? oid, mib: Number(await git(["cat-file", "-s", oid])) / 1048576 })));
}

export interface Violation {
  rule: Rule;
  ref: string;
  message: string;
}

interface PolicyContext {
  policy: PushPolicy;
  /** null when the bottle switched DLP off for pushes. */
  scanner: Scanner | null;
  git: Git;
  /** Does `git merge-base --is-ancestor a b` hold? */
  isAncestor(a: string, b: string): Promise<boolean>;
  /** Every ref upstream lists now -> its value. */
  upstream: Map<string, string>;
  /** The spellings of a ref deleted upstream (by the gate, or seen pruned from the mirror), with the values they had (deleted.ts). */
  deletedAt(ref: string): Promise<DeletedRef[]>;
}

/** pre-receive's stdin: "<old> <new> <ref>" per line. */
export function parseUpdates(input: string): RefUpdate[] {
  return input
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [old, next, ref] = l.split(" ");
      return { old: old!, new: next!, ref: ref! };
    });
}

/**
 * git check-ref-format's rules for a full ref name. receive-pack refuses a bad name only
 * after pre-receive ran, so the policy must not judge one by its glob alone
 * ("refs/heads/agent/../main" matches "agent/**").
 */
export function isValidRefName(ref: string): boolean {
  if (!ref.startsWith("refs/") || ref.endsWith("/") || ref.endsWith(".") || ref.includes("..") || ref.includes("@{")) return false;
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(ref)) return false;
  return ref.split("/").every((c) => c.length > 0 && !c.startsWith(".") && !c.endsWith(".lock"));
}

function shortSha(sha: string) {
  return sha.slice(0, 12);
}

function describeFinding(f: Finding) {
  return `${f.detector} detector (${f.label}: ${f.excerpt})`;
}

/** Header, message and target of a tag object. */
function parseTag(text: string): { header: string; message: string; object: string } {
  const split = text.indexOf("\n\n");
  const header = split === -1 ? text : text.slice(0, split);
  const object = /^object ([0-9a-f]+)$/m.exec(header)?.[1] ?? "";
  return { header, message: split === -1 ? "" : text.slice(split + 2), object };
}

/**
 * What the ref rules say of moving `u.ref` from `u.old` to `u.new`: allowedRefs (replace
 * refs never) and protectedBranches. Apart from checkPush, for a ref that may be upstream's
 * symbolic ref to another: the move is judged under that other name too.
 */
export async function judgeMove(u: RefUpdate, policy: PushPolicy, isAncestor: PolicyContext["isAncestor"]): Promise<{ rule: Rule; message: string }[]> {
  const out: { rule: Rule; message: string }[] = [];
  if (u.ref.startsWith("refs/replace/")) {
    out.push({ rule: "allowedRefs", message: `${u.ref} is a replace ref, which makes git show one object in place of another; git-gate never accepts one` });
  } else if (policy.allowedRefs.length && !policy.allowedRefs.some((p) => refMatches(p, u.ref))) {
    out.push({ rule: "allowedRefs", message: `${u.ref} is not an allowed ref (allowed: ${policy.allowedRefs.join(", ")})` });
  }
  const branch = u.ref.startsWith("refs/heads/") ? u.ref.slice("refs/heads/".length) : null;
  const name = branch !== null ? `branch ${branch}` : `ref ${u.ref}`;
  if (policy.protectedBranches.some((p) => refMatches(p, u.ref))) {
    if (ZERO.test(u.new)) out.push({ rule: "protectedBranches", message: `deleting protected ${name} is not allowed` });
    else if (!ZERO.test(u.old) && !(await isAncestor(u.old, u.new))) {
      out.push({ rule: "protectedBranches", message: `force-push (non-fast-forward) to protected ${name} is not allowed` });
    }
  } else {
    const lookalike = policy.protectedBranches.find((p) => refMatches(p, u.ref, true));
    if (lookalike) out.push({ rule: "protectedBranches", message: `${u.ref} differs from protected ${lookalike} only in case (the same ref on a case-insensitive upstream)` });
  }
  return out;
}

export async function checkPush(updates: RefUpdate[], ctx: PolicyContext): Promise<Violation[]> {
  const { policy } = ctx;
  const violations: Violation[] = [];
  const analysed = new Map<string, Promise<CommitChanges>>();
  const protectedBy = (path: string) => policy.protectedPaths.find((p) => pathMatches(p, path));
  /** A finding in the lines added to `path` (its name scanned with them). */
  const scanAdded = (path: string, lines: string[]) => ctx.scanner?.scan(`${path}\n${lines.join("\n")}`) ?? null;
  const changesOf = (c: string) => {
    if (!analysed.has(c)) analysed.set(c, commitChanges(ctx.git, c));
    return analysed.get(c)!;
  };

  // What the gate's refs hold; receive-pack checks a command's old value only after
  // pre-receive, so the policy checks it first.
  const current = await refValues(ctx.git);
  const tips = await publishedTips(ctx.git, ctx.upstream);

  for (const u of updates) {
    const v = (rule: Rule, message: string) => violations.push({ rule, ref: u.ref, message });
    const deleting = ZERO.test(u.new);

    // Upstream keeps a ref's name as it is, so it is content too. Checked first, and alone:
    // every other message names the ref, and this one must not repeat the secret.
    const inName = ctx.scanner?.scan(u.ref);
    if (inName) {
      violations.push({ rule: "dlp", ref: "(ref name withheld)", message: `the ref name carries a secret: found by the ${describeFinding(inName)}` });
      continue;
    }
    if (!isValidRefName(u.ref)) {
      v("allowedRefs", `${JSON.stringify(u.ref)} is not a valid ref name`);
      continue;
    }
    const actual = current.get(u.ref) ?? null;
    if ((ZERO.test(u.old) ? null : u.old) !== actual) {
      v("oldValue", `the push says ${u.ref} was at ${ZERO.test(u.old) ? "nothing" : shortSha(u.old)}, but it is at ${actual ? shortSha(actual) : "nothing"} (fetch and try again)`);
      continue;
    }
    for (const r of await judgeMove(u, policy, ctx.isAncestor)) v(r.rule, r.message);
    const protectedRef = policy.protectedBranches.some((p) => refMatches(p, u.ref));
    if (deleting) continue;

    // Peel tags down to what the ref finally names, scanning each tag on the way. The
    // type comes from the object itself, never from what a tag claims it points at.
    const typeOf = async (sha: string) => (await ctx.git(["cat-file", "-t", sha])).trim();
    let target = u.new;
    let type = await typeOf(target);
    while (type === "tag") {
      const tag = parseTag(await ctx.git(["cat-file", "tag", target]));
      const f = ctx.scanner?.scan(`${tag.header}\n${tag.message}`);
      if (f) v("dlp", `tag ${shortSha(target)}: secret found by the ${describeFinding(f)}`);
      target = tag.object;
      type = await typeOf(target);
    }
    if (type !== "commit") {
      v("refTarget", `${u.ref} points at a ${type}, not a commit; git-gate cannot check what a ${type} adds`);
      continue;
    }

    const created = ZERO.test(u.old);
    const froms: { ref: string; sha: string; by?: DeletedRef["by"] }[] = protectedRef || !policy.protectedPaths.length ? [] : created ? await ctx.deletedAt(u.ref) : [{ ref: u.ref, sha: u.old }];
    // The commits the ref held where it is judged as moved from: for a ref created again,
    // where it was deleted (each spelling's value).
    const heldBefore: string[] = [];
    for (const from of froms) {
      const deletedAs = from.ref === u.ref ? `${u.ref} was deleted` : `${u.ref} is ${from.ref} on a case-insensitive upstream, which was deleted`;
      const where = from.by === "upstream" ? `upstream, not through git-gate, after git-gate last held it at ${shortSha(from.sha)}` : `through git-gate at ${shortSha(from.sha)}`;
      if (created && !(await ctx.git(["cat-file", "-e", from.sha]).then(() => true, () => false))) {
        v("protectedPaths", `${deletedAs} ${where} and git-gate no longer holds that commit, so it cannot tell what creating the ref again would take back: push under another name`);
        continue;
      }
      const oldCommit = await ctx.git(["rev-parse", "--verify", "--quiet", `${from.sha}^{commit}`]).then((s) => s.trim(), () => null);
      if (!oldCommit) continue;
      heldBefore.push(oldCommit);
      for (const path of await droppedPaths(ctx.git, oldCommit, target)) {
        const pattern = protectedBy(path);
        if (!pattern) continue;
        const change = `${shortSha(oldCommit)}'s change to protected path ${path} (matches ${pattern})`;
        v(
          "protectedPaths",
          created
            ? `${deletedAs} ${where}, so creating it again counts as moving it from there, and this takes back ${change}; a branch under a name ${from.by === "upstream" ? "git-gate has not seen deleted" : "git-gate has not deleted"} may start at any published commit`
            : `the update takes back ${change}: a rewind or a replaced history may not undo one`,
        );
      }
    }

    const oversized = await oversizedFiles(ctx.git, target, tips);
    for (const o of oversized) v("fileSize", `the push adds ${o.path} of ${o.mib.toFixed(1)} MiB; git-gate checks files under ${MAX_FILE_MIB} MiB (keep large files out of the repo)`);
    if (oversized.length) continue;

    const range = beyond(target, tips);
    const newCommits = (await ctx.git(["rev-list", ...range.args], range.input)).split("\n").filter(Boolean);
    // A ref created again counts as moved from where the gate deleted it, and an update's
    // old history is no change of the ref's: the commits that ref held then are upstream's,
    // not the agent's, so they are not refused for the protected paths they change (the
    // check above holds what it takes back). They were taken off upstream with the ref,
    // though, so every other check still reads them as new (published.ts).
    const heldRange = created && heldBefore.length ? beyond(target, [...tips, ...heldBefore]) : null;
    const changesRef = heldRange ? new Set((await ctx.git(["rev-list", ...heldRange.args], heldRange.input)).split("\n").filter(Boolean)) : null;
    const flagged = new Set<string>(); // paths a single commit was already refused for
    for (const c of newCommits) {
      const ch = await changesOf(c);
      const encoding = /^encoding (.*)$/m.exec(ch.header)?.[1]?.trim();
      if (encoding !== undefined && !/^utf-?8$/i.test(encoding)) {
        v("commitFormat", `commit ${shortSha(c)} declares encoding ${JSON.stringify(encoding)}: git re-encodes its message for every reader, so what git-gate scans is not what they read; git-gate accepts UTF-8 commits only`);
      }
      if (ch.strayParents.length) {
        v("commitFormat", `commit ${shortSha(c)} has a "parent" line after its author/committer, which git does not read as a parent; git-gate refuses commits other tools may read differently`);
      }
      for (const path of changesRef && !changesRef.has(c) ? [] : ch.paths) {
        const pattern = protectedBy(path);
        if (pattern) v("protectedPaths", `commit ${shortSha(c)} changes protected path ${path} (matches ${pattern})`);
      }
      if (!ctx.scanner) continue;
      const inMessage = ctx.scanner.scan(ch.message);
      if (inMessage) v("dlp", `commit ${shortSha(c)} message: secret found by the ${describeFinding(inMessage)}`);
      const inHeader = ctx.scanner.scan(ch.header);
      if (inHeader) v("dlp", `commit ${shortSha(c)} header: secret found by the ${describeFinding(inHeader)}`);
      for (const [path, lines] of ch.added) {
        const f = scanAdded(path, lines);
        if (f) {
          v("dlp", `commit ${shortSha(c)} adds a secret to ${path}: found by the ${describeFinding(f)}`);
          flagged.add(path);
        }
      }
      const inFolders = ctx.scanner.scan(ch.folders.join("\n"));
      if (inFolders) v("dlp", `commit ${shortSha(c)} names a folder with a secret: found by the ${describeFinding(inFolders)}`);
    }
    if (!ctx.scanner || newCommits.length < 2) continue;
    // Each commit's lines alone miss a key whose header comes in one commit and its body
    // in the next; what the new commits add together, over the published commits they
    // build on, holds it whole.
    const fresh = new Set(newCommits);
    const published = new Set((await Promise.all(newCommits.map(changesOf))).flatMap((ch) => ch.parents).filter((p) => !fresh.has(p)));
    for (const [path, lines] of (await addedOver(ctx.git, [...published], target)).added) {
      if (flagged.has(path)) continue;
      const f = scanAdded(path, lines);
      if (f) v("dlp", `the ${newCommits.length} new commits together add a secret to ${path}, split across them: found by the ${describeFinding(f)}`);
    }
  }
  return violations;
}
