// The refs git-gate deleted upstream, each with the value it had. A ref created again is
// judged as moved from there (policy.ts, protectedPaths), or deleting a branch and
// creating it at an older commit would rewind it past a protected-path change in two
// pushes, each of which the gate would judge alone. Kept in the mirror's folder, beside
// what git keeps there (git reads nothing else in it, and a fetch's --prune touches refs
// only).
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
import { foldPath } from "./glob.ts";

export interface DeletedRef {
  /** The spelling the gate deleted (`ref` itself or one differing only in case). */
  ref: string;
  /** Its value then. */
  sha: string;
}

export interface DeletedRefs {
  /** Each spelling of `ref` the gate deleted (and that was not created through it since), with the value it had. */
  at(ref: string): Promise<DeletedRef[]>;
  record(ref: string, sha: string): Promise<void>;
  /**
   * Drop the record of this spelling only: on a case-sensitive upstream another spelling
   * is another ref, still deleted; on a case-insensitive one keeping it can only refuse more.
   */
  forget(ref: string): Promise<void>;
}

const hash = (text: string) => createHash("sha256").update(text).digest("hex");

/** One record file: "<sha> <ref>". */
const RECORD = /^([0-9a-f]{40,64}) (\S+)$/;

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
        if (m) out.push({ ref: m[2]!, sha: m[1]! });
      }
      return out;
    },
    async record(ref, sha) {
      await mkdir(group(ref), { recursive: true });
      await writeFileAtomic(file(ref), `${sha} ${ref}\n`, 0o644);
    },
    forget: (ref) => rm(file(ref), { force: true }),
  };
}
