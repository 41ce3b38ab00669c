// The push policy, checked in pre-receive before anything goes upstream. Each violation
// names its rule and the ref (and path) so the agent's terminal shows why:
//   allowedRefs       the ref must match one pattern (when any are given);
//   protectedBranches no delete, no non-fast-forward update;
//   protectedPaths    no new commit may change a matching path;
//   dlp               no new commit may add a detectable secret (in a file, a path name
//                     or its message; annotated tag messages too).
// "New" commits are those no ref of the gate reaches yet; the gate mirrors upstream, so
// that is what upstream has not seen.
import type { PushPolicy } from "../../lib/plan/schema.ts";
import type { Finding, Scanner } from "../../lib/dlp/mod.ts";
import { commitChanges, type CommitChanges, type Git } from "./diff.ts";
import { pathMatches, refMatches } from "./glob.ts";

export const ZERO = /^0+$/;

export interface RefUpdate {
  old: string;
  new: string;
  ref: string;
}

export type Rule = "allowedRefs" | "protectedBranches" | "protectedPaths" | "dlp";

export interface Violation {
  rule: Rule;
  ref: string;
  message: string;
}

export interface PolicyContext {
  policy: PushPolicy;
  /** null when the bottle switched DLP off for pushes. */
  scanner: Scanner | null;
  git: Git;
  /** Does `git merge-base --is-ancestor a b` hold? */
  isAncestor(a: string, b: string): Promise<boolean>;
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

function shortSha(sha: string) {
  return sha.slice(0, 12);
}

function describeFinding(f: Finding) {
  return `${f.detector} detector (${f.label}: ${f.excerpt})`;
}

export async function checkPush(updates: RefUpdate[], ctx: PolicyContext): Promise<Violation[]> {
  const { policy } = ctx;
  const violations: Violation[] = [];
  const analysed = new Map<string, Promise<CommitChanges>>();
  const changesOf = (c: string) => {
    if (!analysed.has(c)) analysed.set(c, commitChanges(ctx.git, c));
    return analysed.get(c)!;
  };

  for (const u of updates) {
    const v = (rule: Rule, message: string) => violations.push({ rule, ref: u.ref, message });
    const deleting = ZERO.test(u.new);
    const branch = u.ref.startsWith("refs/heads/") ? u.ref.slice("refs/heads/".length) : null;

    if (policy.allowedRefs.length && !policy.allowedRefs.some((p) => refMatches(p, u.ref))) {
      v("allowedRefs", `${u.ref} is not an allowed ref (allowed: ${policy.allowedRefs.join(", ")})`);
    }
    if (branch && policy.protectedBranches.some((p) => refMatches(p, u.ref))) {
      if (deleting) v("protectedBranches", `deleting protected branch ${branch} is not allowed`);
      else if (!ZERO.test(u.old) && !(await ctx.isAncestor(u.old, u.new))) {
        v("protectedBranches", `force-push (non-fast-forward) to protected branch ${branch} is not allowed`);
      }
    }
    if (deleting) continue;

    const newCommits = (await ctx.git(["rev-list", u.new, "--not", "--all"])).split("\n").filter(Boolean);
    for (const c of newCommits) {
      const ch = await changesOf(c);
      for (const path of ch.paths) {
        const pattern = policy.protectedPaths.find((p) => pathMatches(p, path));
        if (pattern) v("protectedPaths", `commit ${shortSha(c)} changes protected path ${path} (matches ${pattern})`);
      }
      if (!ctx.scanner) continue;
      const inMessage = ctx.scanner.scan(ch.message);
      if (inMessage) v("dlp", `commit ${shortSha(c)} message: secret found by the ${describeFinding(inMessage)}`);
      for (const [path, lines] of ch.added) {
        const f = ctx.scanner.scan(`${path}\n${lines.join("\n")}`);
        if (f) v("dlp", `commit ${shortSha(c)} adds a secret to ${path}: found by the ${describeFinding(f)}`);
      }
    }
    if (ctx.scanner && (await ctx.git(["cat-file", "-t", u.new])).trim() === "tag") {
      const tag = await ctx.git(["cat-file", "tag", u.new]);
      const f = ctx.scanner.scan(tag.slice(tag.indexOf("\n\n") + 2));
      if (f) v("dlp", `tag message: secret found by the ${describeFinding(f)}`);
    }
  }
  return violations;
}
