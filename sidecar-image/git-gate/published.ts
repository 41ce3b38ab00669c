// What counts as published when a push is judged: the commits upstream's branches and
// tags reach now, not those the gate's mirror last saw. The mirror is fetched (with
// --prune) when a session begins, but is served as it was when that fetch fails, and
// upstream may drop or rewrite a branch while the agent's pack is on its way: a commit
// only such a stale ref reaches was taken back upstream (a leaked secret deleted with its
// branch, or rewound away), and a push that brings it again brings it anew, to be checked
// as new. So a tip upstream lists that the gate does not hold is fetched before the push is
// judged (unheldTips), never stood in for by the mirror's old value of the ref.
import type { Git } from "./diff.ts";

const PUBLISHING = /^refs\/(heads|tags)\//;

/** Upstream's branches and tags, as it lists them now. */
const listedTips = (upstream: Map<string, string>) => [...upstream].filter(([ref]) => PUBLISHING.test(ref));

/**
 * The tips whose history is published: each branch and tag upstream lists now, where the
 * gate holds its commit. One the gate could not fetch counts for nothing (stricter: what
 * only it reaches is checked as new).
 */
export async function publishedTips(git: Git, upstream: Map<string, string>): Promise<string[]> {
  const shas = [...new Set(listedTips(upstream).map(([, sha]) => sha))];
  return [...(await heldObjects(git, shas))];
}

/** The branches and tags upstream lists at a value the gate does not hold (to fetch before judging). */
export async function unheldTips(git: Git, upstream: Map<string, string>): Promise<string[]> {
  const listed = listedTips(upstream);
  const held = await heldObjects(git, [...new Set(listed.map(([, sha]) => sha))]);
  return listed.filter(([, sha]) => !held.has(sha)).map(([ref]) => ref);
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
