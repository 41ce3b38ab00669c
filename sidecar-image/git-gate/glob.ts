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
 * itself ("deploy/**" covers a file, symlink or submodule named "deploy"). Leading, doubled
 * and trailing slashes and "." segments do not count ("/infra/", "./deploy/**"). Both sides
 * are folded (foldPath), so no spelling of a protected path slips through.
 */
export function pathMatches(pattern: string, path: string): boolean {
  // "./deploy/**" and "deploy//**" name what "deploy/**" does; no path git stores has an
  // empty or "." segment, so left in they would silently protect nothing.
  const bare = pattern.split("/").filter((s) => s !== "" && s !== ".").join("/");
  const anchored = bare.includes("/");
  const trimmed = foldPath(bare.replace(/\/\*\*$/, ""));
  const re = globToRegExp(trimmed);
  const parts = foldPath(path).split("/");
  if (!anchored) return parts.some((p) => re.test(p) || mayBeShortName(trimmed, p));
  for (let i = 1; i <= parts.length; i++) if (re.test(parts.slice(0, i).join("/"))) return true;
  return parts.some((p) => SHORT_NAME.test(p)) && segmentsMatch(trimmed.split("/"), parts);
}

/**
 * A folded name shaped like an NTFS 8.3 short name: up to six characters, "~N", an
 * extension of up to three. On a Windows checkout with short names on, "githu~1/x" may
 * open the folder ".github" (git refuses "git~1" for ".git" for the same reason).
 */
const SHORT_NAME = /^([^~/.]{1,6})~[0-9]{1,6}(?:\.([^~/.]{1,3}))?$/;

/**
 * Could `name` be the short name Windows gives a name `segment` (a glob) matches? The
 * short name drops dots and spaces, keeps the base's first six characters (or its first
 * two and four hex digits of a hash) and the extension's first three. Generous on purpose:
 * it may say yes to a name that would get another short name, never no to one that gets it.
 */
function mayBeShortName(segment: string, name: string): boolean {
  const m = SHORT_NAME.exec(name);
  if (!m) return false;
  const [, base, ext] = m;
  const dot = segment.lastIndexOf(".");
  const wild = /[*?]/.test(segment);
  // A glob's extension may come from inside a `*`; a literal's is after its last dot.
  const longBase = wild || dot <= 0 ? segment : segment.slice(0, dot);
  const longExt = wild ? "*" : dot <= 0 ? "" : segment.slice(dot + 1);
  if (ext === undefined ? !wild && longExt !== "" : !couldStart(longExt.replace(/[. ]/g, ""), ext)) return false;
  const squeezed = longBase.replace(/[. ]/g, "");
  return couldStart(squeezed, base!) || (/^.{0,2}[0-9a-f]{4}$/.test(base!) && couldStart(squeezed, base!.slice(0, -4)));
}

/** Can some string the glob `glob` (within one segment) matches start with `prefix`? */
function couldStart(glob: string, prefix: string): boolean {
  let states = new Set([0]);
  const close = (s: Set<number>) => {
    for (const i of s) if (glob[i] === "*") s.add(i + 1);
    return s;
  };
  close(states);
  for (const c of prefix) {
    const next = new Set<number>();
    for (const i of states) {
      if (glob[i] === "*") next.add(i);
      else if (glob[i] === "?" || glob[i] === c) next.add(i + 1);
    }
    states = close(next);
    if (!states.size) return false;
  }
  return true;
}

/**
 * The anchored match again, one segment at a time, so a short name can stand for the
 * segment it abbreviates. "**" spans any number of segments; a pattern matching the
 * path's first segments protects what lies below them.
 */
function segmentsMatch(pattern: string[], parts: string[]): boolean {
  const step = (i: number, j: number): boolean => {
    if (i === pattern.length) return j > 0;
    if (pattern[i] === "**") return step(i + 1, j) || (j < parts.length && step(i, j + 1));
    if (j === parts.length) return false;
    const seg = pattern[i]!.replace(/\*\*/g, "*");
    return (globToRegExp(seg).test(parts[j]!) || mayBeShortName(seg, parts[j]!)) && step(i + 1, j + 1);
  };
  return step(0, 0);
}
