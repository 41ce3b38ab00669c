// The one glob dialect of push policies: `*` and `?` stay within a path segment, `**`
// crosses segments ("refs/heads/agent/**", ".github/**", "**/*.pem").

/** Compile a glob to an anchored RegExp. */
export function globToRegExp(glob: string): RegExp {
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
  return new RegExp(`^${re}$`);
}

/**
 * Ref patterns starting with "refs/" match the full ref name; anything else names
 * branches ("main", "release/*") and matches refs/heads/<pattern>.
 */
export function refMatches(pattern: string, ref: string): boolean {
  const full = pattern.startsWith("refs/") ? pattern : `refs/heads/${pattern}`;
  return globToRegExp(full).test(ref);
}

/**
 * Path patterns follow .gitignore habits: one without a slash matches a file or folder
 * name at any depth ("*.pem", "secrets"); one with a slash is anchored at the root
 * (".github/workflows/*"). Naming a folder protects everything below it.
 */
export function pathMatches(pattern: string, path: string): boolean {
  const trimmed = pattern.replace(/^\/+|\/+$/g, "");
  const re = globToRegExp(trimmed);
  const parts = path.split("/");
  if (!trimmed.includes("/")) return parts.some((p) => re.test(p));
  for (let i = 1; i <= parts.length; i++) if (re.test(parts.slice(0, i).join("/"))) return true;
  return false;
}
