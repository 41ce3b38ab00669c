// A host checkout copied into the bottle (--cwd) brings its git config files along (the
// repository's, its submodules', a nested clone's, config.worktree), and with them
// whatever credentials the host keeps there: a token in a URL (a remote's, a submodule's,
// a proxy's: https://user:TOKEN@host/...), an http.extraHeader carrying Authorization
// (what CI checkouts write), a section whose URL holds a token, credential helpers, a
// password or token setting (sendemail.smtpPass, github.token). The bottle must hold no
// real credential, so the staged copy loses all of them. What was removed is described
// without the values. A `store --file F` helper also names the file the tokens are in,
// which the caller leaves out of the copy.
import { homedir } from "node:os";
import { resolve } from "node:path";
import { run } from "../proc.ts";

/** The userinfo of a URL anywhere in a value, up to its last "@" before the path:
 * "https://me:p@ss@host/x" carries "me:p@ss". */
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)([^/?#\s]*)@/gi;

/** ssh carries a user name, not a secret (ssh://git@host/x): kept unless it has a password. */
const strip = (value: string) =>
  value.replace(URL_USERINFO, (whole, scheme: string, info: string) => (/^(?:git\+)?ssh(?:\+git)?:\/\/$/i.test(scheme) && !info.includes(":") ? whole : scheme));
const carriesCredential = (value: string) => strip(value) !== value;

/** Keys whose value is itself the secret, or that hand git one. */
const SECRET_KEY = /^credential\.|extraheader$|(?:password|passwd|token|secret|smtppass)$/i;

export interface Scrubbed {
  /** What went, described without values. */
  removed: string[];
  /** Files a `credential.helper = store --file F` kept its tokens in (absolute). */
  storeFiles: string[];
}

/** "section.sub.section.name" -> its section ("section.sub.section") and subsection ("sub.section"). */
function sectionOf(key: string): { section: string; sub: string | null } {
  const first = key.indexOf(".");
  const last = key.lastIndexOf(".");
  return { section: key.slice(0, last), sub: first === last ? null : key.slice(first + 1, last) };
}

/** The file a store helper names ("store --file ~/x", "store --file=x"), relative to `base`. */
function storeFileOf(helper: string, base: string): string | null {
  const m = /(?:^|\s)store\b.*?--file(?:=|\s+)("[^"]*"|'[^']*'|\S+)/.exec(helper);
  if (!m) return null;
  const file = m[1]!.replace(/^(["'])(.*)\1$/, "$2");
  return file.startsWith("~/") ? resolve(homedir(), file.slice(2)) : resolve(base, file);
}

/**
 * Strip the credential-bearing entries from the git config file at `path` (a copy); `base`
 * is the checkout a relative store file is read against. A file git cannot read as config
 * is left as it is (git cannot take credentials from it either): removed is then empty.
 */
export async function scrubGitCredentials(path: string, base: string): Promise<Scrubbed> {
  const git = (args: string[], expect: readonly number[] = [0]) =>
    run(["git", "config", "--file", path, ...args], { expect, what: `Cannot clean the copied ${path}` });
  const listed = await git(["--no-includes", "--null", "--list"], [0, 1, 3, 128]);
  const out: Scrubbed = { removed: [], storeFiles: [] };
  if (listed.code !== 0) return out;
  const entries = listed.stdout
    .split("\0")
    .filter(Boolean)
    .map((e) => {
      const nl = e.indexOf("\n");
      return nl === -1 ? { key: e, value: "" } : { key: e.slice(0, nl), value: e.slice(nl + 1) };
    });

  // A section named by a URL with a token in it ([url "https://x:TOKEN@host/"],
  // [http "https://u:p@host"]) goes whole: git cannot rename a subsection in place.
  const sections = new Set<string>();
  for (const { key } of entries) {
    const { section, sub } = sectionOf(key);
    if (sub !== null && carriesCredential(sub)) sections.add(section);
  }

  const rewrite = new Map<string, string[]>();
  const unset = new Set<string>();
  for (const { key, value } of entries) {
    if (sections.has(sectionOf(key).section)) continue;
    if (SECRET_KEY.test(key)) {
      unset.add(key);
      const store = /^credential\..*helper$/i.test(key) ? storeFileOf(value, base) : null;
      if (store) out.storeFiles.push(store);
    } else if (!rewrite.has(key) && carriesCredential(value)) {
      rewrite.set(key, entries.filter((e) => e.key === key).map((e) => strip(e.value)));
    }
  }
  // Keep the URL, drop its userinfo (which also lets ~/.gitconfig's insteadOf rewrite a
  // remote to git-gate).
  for (const [key, values] of rewrite) {
    await git(["--unset-all", key]);
    for (const v of values) await git(["--add", key, v]);
    out.removed.push(`the credential in ${key}`);
  }
  for (const key of unset) {
    await git(["--unset-all", key], [0, 5]);
    out.removed.push(key);
  }
  for (const section of sections) {
    await git(["--remove-section", section]);
    const { sub } = sectionOf(`${section}.x`);
    out.removed.push(`a [${section.slice(0, section.indexOf("."))} "${strip(sub!).replace(/:\/\//, "://***@")}"] section whose URL carried a credential`);
  }
  for (const f of out.storeFiles) out.removed.push(`the credential store file ${f} (named by a store helper)`);
  out.removed = [...new Set(out.removed)];
  return out;
}
