// What one pushed commit changes: the paths it touches and the lines it adds, read from
// `git diff-tree -p` against each parent. A merge counts only what differs from every
// parent (what the merge itself introduced), so merging already-published work does not
// count as touching its paths or adding its lines; a merge that keeps one parent's version
// of a path another parent changed does count as touching it (revertedPaths).
import { Buffer } from "node:buffer";

/** Runs git in the gate repo (with `input` on its stdin) and returns stdout; throws on failure. */
export type Git = (args: string[], input?: string) => Promise<string>;

/** Every ref of the repo `git` runs in, with its value. */
export async function refValues(git: Git): Promise<Map<string, string>> {
  const refs = new Map<string, string>();
  for (const line of (await git(["for-each-ref", "--format=%(objectname) %(refname)"])).split("\n").filter(Boolean)) {
    const at = line.indexOf(" ");
    refs.set(line.slice(at + 1), line.slice(0, at));
  }
  return refs;
}

export interface CommitChanges {
  commit: string;
  /** The commit object's header lines (tree, parents, author, committer, any extra). */
  header: string;
  /** The parents git reads (the "parent" lines right after "tree"). */
  parents: string[];
  /** "parent" lines git does not read as parents (after author or committer): extra
   * header lines fsck accepts, which a reader that takes every "parent" line miscounts. */
  strayParents: string[];
  message: string;
  /** Paths changed (relative to the repo root). */
  paths: string[];
  /** Added lines per changed path (binary files included, see --text). */
  added: Map<string, string[]>;
  /** Folders the commit adds or changes (their names are content too). */
  folders: string[];
}

/** The folders in `git diff-tree -t --raw` output: ":old new sha sha X\tpath" lines with mode 040000. */
function rawFolderPaths(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(":")) continue;
    const tab = line.indexOf("\t");
    if (tab === -1 || line.split(" ")[1] !== "040000") continue;
    const path = line.slice(tab + 1);
    out.push(path.startsWith('"') ? unquoteCPath(path) : path);
  }
  return out;
}

// --text: a file git would call binary (one NUL byte, or a -diff attribute) still shows
// its lines, or a secret could ride in it unscanned.
// -t --raw: folders get a line of their own too, so a name that only an empty folder
// carries (no file below it to diff) is still seen.
const DIFF_FLAGS = ["--no-color", "--no-ext-diff", "--no-textconv", "--no-renames", "--submodule=short", "--text", "-r", "-t", "--raw", "-p"];

const ESCAPES: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 34, "\\": 92 };

/** Undo git's C-style quoting of a path ("a\tb", "\303\251"). */
function unquoteCPath(quoted: string): string {
  const bytes: number[] = [];
  for (let i = 1; i < quoted.length - 1; i++) {
    const c = quoted[i]!;
    if (c !== "\\") {
      bytes.push(...Buffer.from(c, "utf8"));
      continue;
    }
    const next = quoted[++i]!;
    if (/[0-7]/.test(next)) {
      bytes.push(Number.parseInt(quoted.slice(i, i + 3), 8));
      i += 2;
    } else bytes.push(ESCAPES[next] ?? next.charCodeAt(0));
  }
  return Buffer.from(bytes).toString("utf8");
}

/** The path of a "diff --git a/P b/P" line (renames are off, so both sides agree). */
function diffGitPath(line: string): string {
  const rest = line.slice("diff --git ".length);
  if (rest.startsWith('"')) {
    const end = rest.indexOf('" "');
    return unquoteCPath(rest.slice(end + 2)).slice(2);
  }
  return rest.slice(2, 2 + (rest.length - 5) / 2);
}

/** Changed paths and their added lines from `git diff -p` output, hunks framed by their counts. */
export function parsePatch(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | null = null;
  let oldLeft = 0;
  let newLeft = 0;
  for (const line of text.split("\n")) {
    if (oldLeft > 0 || newLeft > 0) {
      const c = line[0];
      if (c === " ") {
        oldLeft--;
        newLeft--;
      } else if (c === "-") oldLeft--;
      else if (c === "+") {
        newLeft--;
        current?.push(line.slice(1));
      }
      continue; // "\ No newline at end of file" counts for neither side
    }
    if (line.startsWith("diff --git ")) {
      current = [];
      out.set(diffGitPath(line), current);
    } else if (line.startsWith("@@ ")) {
      const m = /^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@/.exec(line);
      oldLeft = m ? Number(m[1] ?? 1) : 0;
      newLeft = m ? Number(m[2] ?? 1) : 0;
    }
  }
  return out;
}

/** Lines present in every list, as a multiset (order of the first list). */
function intersectLines(lists: string[][]): string[] {
  const [first, ...others] = lists;
  const counts = others.map((l) => {
    const m = new Map<string, number>();
    for (const x of l) m.set(x, (m.get(x) ?? 0) + 1);
    return m;
  });
  const out: string[] = [];
  for (const line of first ?? []) {
    if (counts.every((m) => (m.get(line) ?? 0) > 0)) {
      for (const m of counts) m.set(line, m.get(line)! - 1);
      out.push(line);
    }
  }
  return out;
}

export async function commitChanges(git: Git, commit: string): Promise<CommitChanges> {
  const raw = await git(["cat-file", "commit", commit]);
  const split = raw.indexOf("\n\n");
  const header = split === -1 ? raw : raw.slice(0, split);
  const message = split === -1 ? "" : raw.slice(split + 2);
  const { parents, strayParents } = parentsOf(header);
  const { perBase, added, folders } = await addedOver(git, parents, commit);
  const paths = new Set(added.keys());
  if (parents.length > 1) for (const path of await revertedPaths(git, parents, perBase)) paths.add(path);
  return { commit, header, message, parents, strayParents, paths: [...paths], added, folders };
}

/**
 * What `commit` adds over every one of `bases` (commits or trees): a path counts when it
 * differs from each base, and its added lines are those every diff adds. With no base it
 * is the commit's whole content (a root commit, or a push of new history).
 */
export async function addedOver(git: Git, bases: string[], commit: string): Promise<{ perBase: Map<string, string[]>[]; added: Map<string, string[]>; folders: string[] }> {
  const base = ["-c", "core.quotePath=false", "diff-tree", ...DIFF_FLAGS];
  const patches = bases.length
    ? await Promise.all(bases.map((p) => git([...base, p, commit])))
    : [await git([...base, (await git(["hash-object", "-t", "tree", "/dev/null"])).trim(), commit])];
  const perBase = patches.map(parsePatch);
  const added = new Map<string, string[]>();
  for (const path of perBase[0]!.keys()) {
    if (perBase.every((m) => m.has(path))) added.set(path, intersectLines(perBase.map((m) => m.get(path)!)));
  }
  const folderLists = patches.map(rawFolderPaths);
  const folders = folderLists[0]!.filter((f) => folderLists.every((l) => l.includes(f)));
  return { perBase, added, folders };
}

/**
 * A commit's parents as git reads them: only the "parent" lines right after "tree". A later
 * one (after author or committer) is an extra header to git; counted as a parent, it would
 * make a diff against it, not the real parent, what the commit changes.
 */
function parentsOf(header: string): { parents: string[]; strayParents: string[] } {
  const lines = header.split("\n");
  let i = lines[0]?.startsWith("tree ") ? 1 : 0;
  const parents: string[] = [];
  for (; i < lines.length && lines[i]!.startsWith("parent "); i++) parents.push(lines[i]!.slice(7));
  const strayParents = lines.slice(i).filter((l) => l.startsWith("parent ")).map((l) => l.slice(7));
  return { parents, strayParents };
}

/**
 * Paths where a merge takes one parent's version over another parent's own change: the
 * merge matches some parent there, so no diff against every parent shows it, yet it undoes
 * published work (a fix to .github/ reverted by "merging" the commit before it, or a
 * protected file dropped by merging a new root commit that lacks it). A path counts when
 * the merge differs from a parent that changed it since the merge base; with no common
 * base (unrelated histories) every path a parent has counts as its change, and with
 * several bases (criss-cross) a change since any of them does: in doubt, it counts.
 */
async function revertedPaths(git: Git, parents: string[], perParent: Map<string, string[]>[]): Promise<Set<string>> {
  const bases = await mergeBases(git, parents);
  const out = new Set<string>();
  for (const [i, parent] of parents.entries()) {
    const differs = perParent[i]!;
    if (differs.size === 0) continue;
    for (const path of await changedSince(git, bases, parent)) if (differs.has(path)) out.add(path);
  }
  return out;
}

/**
 * Paths a ref update from `from` to `to` takes back: `to` differs there from `from`, which
 * changed it since their merge base. The same judgement as a merge that keeps one parent's
 * version (revertedPaths), for a force-push that drops `from`'s commits outright; a
 * rebase onto newer work only takes what the other side changed, so it drops nothing.
 */
export async function droppedPaths(git: Git, from: string, to: string): Promise<string[]> {
  const differs = new Set(nulNames(await git(["diff-tree", "-r", "-z", "--name-only", "--no-renames", from, to])));
  if (differs.size === 0) return [];
  return (await changedSince(git, await mergeBases(git, [from, to]), from)).filter((p) => differs.has(p));
}

const nulNames = (out: string) => out.split("\0").filter(Boolean);

/** The best common ancestors of `revs`; none for unrelated histories (merge-base exits 1,
 * and any failure reads as none, which counts more). */
async function mergeBases(git: Git, revs: string[]): Promise<string[]> {
  return (await git(["merge-base", "--all", "--octopus", ...revs]).catch(() => "")).split("\n").filter(Boolean);
}

/** Paths `rev` changed since any of `bases`; with no base, every path it has. */
async function changedSince(git: Git, bases: string[], rev: string): Promise<string[]> {
  return bases.length
    ? (await Promise.all(bases.map((b) => git(["diff-tree", "-r", "-z", "--name-only", "--no-renames", b, rev])))).flatMap(nulNames)
    : nulNames(await git(["ls-tree", "-r", "-z", "--name-only", "--full-tree", rev]));
}
