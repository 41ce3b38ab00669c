// The refs git-gate deleted upstream, each with the value it had. A ref created again is
// judged as moved from there (policy.ts, protectedPaths), or deleting a branch and
// creating it at an older commit would rewind it past a protected-path change in two
// pushes, each of which the gate would judge alone. A ref deleted upstream by someone else
// (a merged pull request's branch) rewinds the same way once created again, so a fetch
// that prunes a ref from the mirror records it too, at the value the mirror last held
// (recordPruned); one deleted and gone between two fetches the gate never saw. Kept in the
// mirror's folder, beside what git keeps there (git reads nothing else in it, and a
// fetch's --prune touches refs only).
//
// On an upstream with a case-insensitive file system (macOS, Windows) refs/heads/Main and
// refs/heads/main are one file, so deleting one and creating the other deletes and
// creates the same ref: the records are grouped by the name such a file system sees
// (foldPath), and a create is judged against every spelling's. One folder per group and
// one file per spelling, each named by a hash (a ref's name may be longer than a file
// name can be) and written whole: two pushes at once never lose each other's record.
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../../lib/fs-atomic.ts";
import { foldPath, refMatches } from "./glob.ts";

export interface DeletedRef {
  /** The spelling deleted (`ref` itself or one differing only in case). */
  ref: string;
  /** Its value then (for one deleted upstream, the last the mirror held). */
  sha: string;
  /** Who deleted it: the gate, or upstream (seen when a fetch pruned it from the mirror). */
  by: "gate" | "upstream";
}

interface DeletedRefs {
  /** Each spelling of `ref` the gate deleted (and that was not created through it since), with the value it had. */
  at(ref: string): Promise<DeletedRef[]>;
  record(ref: string, sha: string, by?: DeletedRef["by"]): Promise<void>;
  /**
   * Drop the record of this spelling only: on a case-sensitive upstream another spelling
   * is another ref, still deleted; on a case-insensitive one keeping it can only refuse more.
   */
  forget(ref: string): Promise<void>;
}

const hash = (text: string) => createHash("sha256").update(text).digest("hex");

/** One record file: "<sha> <ref>", and " upstream" after it for a ref upstream deleted. */
const RECORD = /^([0-9a-f]{40,64}) (\S+)( upstream)?$/;

export function deletedRefs(gitDir: string): DeletedRefs {
  const root = join(gitDir, "bb-git-gate", "deleted-refs");
  const group = (ref: string) => join(root, hash(foldPath(ref)));
  const file = (ref: string) => join(group(ref), hash(ref));
  const orNothing = <T>(fallback: T) => (e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return fallback;
    throw e;
  };
  return {
    async at(ref) {
      const names = await readdir(group(ref)).catch(orNothing<string[]>([]));
      const out: DeletedRef[] = [];
      // Dot-prefixed names are writeFileAtomic's temp files, perhaps half written.
      for (const name of names.filter((n) => !n.startsWith(".")).sort()) {
        const m = RECORD.exec((await readFile(join(group(ref), name), "utf8").catch(orNothing(""))).trim());
        if (m) out.push({ ref: m[2]!, sha: m[1]!, by: m[3] ? "upstream" : "gate" });
      }
      return out;
    },
    async record(ref, sha, by = "gate") {
      await mkdir(group(ref), { recursive: true });
      await writeFileAtomic(file(ref), `${sha} ${ref}${by === "upstream" ? " upstream" : ""}\n`, 0o644);
    },
    forget: (ref) => rm(file(ref), { force: true }),
  };
}

/**
 * Record, as deleted upstream, each ref a fetch pruned from the mirror at `gitDir`: in
 * `before` (its refs then), not in `after`. Only names a push may create are kept (any
 * spelling `allowedRefs` matches; every name when it is empty): no other record is ever read.
 * A spelling already recorded at that value (the gate's own delete, which a fetch in the
 * push hook may see first) keeps its record.
 */
export async function recordPruned(gitDir: string, o: { before: Map<string, string>; after: Map<string, string>; allowedRefs: string[] }): Promise<void> {
  const records = deletedRefs(gitDir);
  for (const [ref, sha] of o.before) {
    if (o.after.has(ref)) continue;
    if (o.allowedRefs.length && !o.allowedRefs.some((p) => refMatches(p, ref, true))) continue;
    if ((await records.at(ref)).some((d) => d.ref === ref && d.sha === sha)) continue;
    await records.record(ref, sha, "upstream");
  }
}
