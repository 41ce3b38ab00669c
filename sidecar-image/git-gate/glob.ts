// The one glob dialect of push policies: `*` and `?` stay within a path segment, `**`
// crosses segments ("refs/heads/agent/**", ".github/**", "**/*.pem").

/** Compile a glob to an anchored RegExp. */
export function globToRegExp(glob: string, flags = ""): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*" && glob[i + 1] === "*") {
      i++;
      if (glob[i + 1] === "/") {
        i++;
        re += "(?:.*/)?";
      } else {
        re += ".*";
      }
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`, flags);
}

/**
 * Ref patterns starting with "refs/" match the full ref name; anything else names
 * branches ("main", "release/*") and matches refs/heads/<pattern>. `ignoreCase` finds
 * the spellings a case-insensitive upstream would take for the same ref.
 */
export function refMatches(pattern: string, ref: string, ignoreCase = false): boolean {
  const full = pattern.startsWith("refs/") ? pattern : `refs/heads/${pattern}`;
  return globToRegExp(full, ignoreCase ? "i" : "").test(ref);
}

/**
 * A path as a checkout on some file system would name it: NFC, case folded, without the
 * invisible code points HFS+ ignores, without the trailing dots and spaces Windows drops
 * from each segment. ".GitHub./Workflows" is ".github/workflows" on such a machine. The
 * fold goes through upper case first: NTFS upcases "ı" and "ſ" to "I" and "S", which
 * toLowerCase() alone leaves apart from "i" and "s".
 */
export function foldPath(path: string): string {
  return path
    .normalize("NFC")
    .toUpperCase()
    .toLowerCase()
    .replace(/\p{Default_Ignorable_Code_Point}/gu, "")
    .split("/")
    .map((s) => s.replace(/[ .]+$/, ""))
    .join("/");
}

/**
 * Path patterns follow .gitignore habits: one without a slash matches a file or folder
 * name at any depth ("*.pem", "secrets"); one with a slash is anchored at the root
 * (".github/workflows/*"). Naming a folder protects everything below it and the name
 * itself ("deploy/**" covers a file, symlink or submodule named "deploy"). Both sides
 * are folded (foldPath), so no spelling of a protected path slips through.
 */
export function pathMatches(pattern: string, path: string): boolean {
  const trimmed = pattern.replace(/^\/+|\/+$/g, "");
  const anchored = trimmed.includes("/");
  const re = globToRegExp(foldPath(trimmed.replace(/\/\*\*$/, "")));
  const parts = foldPath(path).split("/");
  if (!anchored) return parts.some((p) => re.test(p));
  for (let i = 1; i <= parts.length; i++) if (re.test(parts.slice(0, i).join("/"))) return true;
  return false;
}
