// Packing host folders into the tars the guest unpacks, with the host's own tar: GNU tar
// on Linux, bsdtar (libarchive) on macOS and the BSDs. The two differ where it matters:
// bsdtar cannot read an exclusion list from stdin (`-X -` fails), matches an exclusion
// pattern against any tail of a path unless it starts with "^" (GNU's default anchors a
// "./name" pattern), exits 1 on any error (GNU: 1 only for "a file changed as we read
// it"), and on macOS archives extended attributes as AppleDouble "._name" entries unless
// told not to.
import { rm, writeFile } from "node:fs/promises";
import { isAbsolute, relative, sep } from "node:path";
import { BbError } from "../errors.ts";
import { run } from "../proc.ts";

export type TarFlavor = "gnu" | "bsd";

/** Which tar `tar` on PATH is. */
export async function tarFlavor(): Promise<TarFlavor> {
  const r = await run(["tar", "--version"], { what: "Cannot run tar (it packs your checkout for the bottle)" });
  return /bsdtar|libarchive/i.test(r.stdout) ? "bsd" : "gnu";
}

/** A name as a tar pattern that matches only itself (fnmatch's specials escaped). */
const literal = (name: string) => name.replace(/[\\*?[]/g, "\\$&");

/** `path` relative to `root` when it lies below it (textually), else null. */
export function below(root: string, path: string): string | null {
  const rel = relative(root, path);
  return rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel) ? null : rel;
}

/**
 * The exclusion list's lines that leave out those of `paths` that lie below `root`, for a
 * `tar -C root ... ./names` pack; empty when none does.
 */
function exclusionPatterns(root: string, paths: Iterable<string>, flavor: TarFlavor): string[] {
  const out: string[] = [];
  for (const p of paths) {
    const rel = below(root, p);
    if (rel === null) continue;
    if (rel.includes("\n")) throw new BbError("USAGE", `Cannot copy ${root}: ${JSON.stringify(p)} has a line break in its name, and must be left out of the copy`);
    out.push(`${flavor === "bsd" ? "^" : ""}${literal(`./${rel}`)}`);
  }
  return out;
}

interface PackOptions {
  /** The folder names are relative to (tar -C). */
  from: string;
  tarFile: string;
  /** "./name" entries of `from` to pack. */
  names: string[];
  /** Host paths below `from` to leave out (with everything below them). */
  leaveOut: Iterable<string>;
  /** Add to `tarFile` rather than create it. */
  append?: boolean;
  /** What failing means to the user ("Cannot pack the checkout X"). */
  what: string;
}

/**
 * Pack `names` of `from` into `tarFile`. Returns GNU tar's note when a file changed while
 * it was read (the archive is whole, holding what tar read), else null.
 */
export async function packFolder(o: PackOptions): Promise<{ changed: string | null }> {
  const flavor = await tarFlavor();
  const patterns = exclusionPatterns(o.from, o.leaveOut, flavor);
  // Beside the tar, in the bottle's own staging folder (only you may enter it).
  const listFile = `${o.tarFile}.exclude`;
  if (patterns.length) await writeFile(listFile, patterns.join("\n") + "\n", { mode: 0o600 });
  try {
    const exclude = patterns.length ? ["-X", listFile] : [];
    const bsd = flavor === "bsd" ? ["--no-xattrs"] : [];
    // --numeric-owner: the guest unpacks without owners (--no-same-owner); names mean nothing there.
    const r = await run(["tar", "-C", o.from, "--numeric-owner", ...bsd, ...exclude, o.append ? "-rf" : "-cf", o.tarFile, ...o.names], {
      expect: flavor === "gnu" ? [0, 1] : [0],
      // macOS's bsdtar would add a "._name" entry for each file with extended attributes.
      env: flavor === "bsd" ? { COPYFILE_DISABLE: "1" } : undefined,
      what: o.what,
    });
    return { changed: r.code === 1 ? r.stderr.trim().split("\n").slice(-2).join(" ") : null };
  } finally {
    await rm(listFile, { force: true });
  }
}
