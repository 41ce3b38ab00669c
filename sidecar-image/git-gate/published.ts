// What counts as published when a push is judged: the commits upstream's branches and
// tags reach now, not those the gate's mirror last saw. The mirror is fetched (with
// --prune) when a session begins, but is served as it was when that fetch fails, and
// upstream may drop a branch while the agent's pack is on its way: a commit only such a
// stale ref reaches was taken back upstream (a leaked secret deleted with its branch, or
// rewound away), and a push that brings it again brings it anew, to be checked as new.
import type { Git } from "./diff.ts";

const PUBLISHING = /^refs\/(heads|tags)\//;

/**
 * The tips whose history is published: each branch and tag upstream lists now, at its
 * upstream value when the gate holds that object, else at the mirror's value (upstream
 * moved on to commits the gate has not fetched yet, most often on top of what it has).
 * A mirror ref upstream no longer lists counts for nothing.
 */
export async function publishedTips(git: Git, mirror: Map<string, string>, upstream: Map<string, string>): Promise<string[]> {
  const listed = [...upstream].filter(([ref]) => PUBLISHING.test(ref));
  const held = await heldObjects(git, [...new Set(listed.map(([, sha]) => sha))]);
  return [...new Set(listed.map(([ref, sha]) => (held.has(sha) ? sha : mirror.get(ref))).filter((t) => t !== undefined))];
}

/** Which of `shas` the repo holds (git cat-file --batch-check). */
async function heldObjects(git: Git, shas: string[]): Promise<Set<string>> {
  if (!shas.length) return new Set();
  const out = await git(["cat-file", "--batch-check=%(objectname)"], `${shas.join("\n")}\n`);
  return new Set(out.split("\n").filter((l) => /^[0-9a-f]+$/.test(l)));
}

/** `git rev-list` arguments and stdin for what `target` brings beyond `tips`. */
export function beyond(target: string, tips: string[]): { args: string[]; input: string } {
  return { args: [target, "--stdin"], input: tips.map((t) => `^${t}\n`).join("") };
}
