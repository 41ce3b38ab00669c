// The refs git-gate deleted upstream, each with the value it had. A ref created again is
// judged as moved from there (policy.ts, protectedPaths), or deleting a branch and
// creating it at an older commit would rewind it past a protected-path change in two
// pushes, each of which the gate would judge alone. Kept in the mirror's folder, beside
// what git keeps there (git reads nothing else in it, and a fetch's --prune touches refs
// only); one file per ref, named by the hash of the ref's name, which may be longer than
// a file name can be.
import { createHash } from "node:crypto";
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../../lib/fs-atomic.ts";

export interface DeletedRefs {
  /** The value `ref` had when the gate last deleted it, or null. */
  at(ref: string): Promise<string | null>;
  record(ref: string, sha: string): Promise<void>;
  forget(ref: string): Promise<void>;
}

export function deletedRefs(gitDir: string): DeletedRefs {
  const dir = join(gitDir, "bb-git-gate", "deleted");
  const file = (ref: string) => join(dir, createHash("sha256").update(ref).digest("hex"));
  return {
    async at(ref) {
      const text = await readFile(file(ref), "utf8").catch((e: NodeJS.ErrnoException) => {
        if (e.code === "ENOENT") return "";
        throw e;
      });
      return /^[0-9a-f]{40,64}$/.exec(text.trim())?.[0] ?? null;
    },
    async record(ref, sha) {
      await mkdir(dir, { recursive: true });
      await writeFileAtomic(file(ref), `${sha}\n`, 0o644);
    },
    forget: (ref) => rm(file(ref), { force: true }),
  };
}
