// A host checkout copied into the bottle (--cwd) brings its git config files along (the
// repository's, its submodules', a nested clone's or bare repository's, config.worktree),
// and with them whatever credentials the host keeps there: a token in a URL (a remote's,
// a submodule's, a proxy's: https://user:TOKEN@host/..., or in its query:
// ?private_token=...), a proxy's password written without a scheme (user:PASS@host:3128),
// an http.extraHeader carrying Authorization (what CI checkouts write), a section whose
// URL holds a token, credential helpers, a password or token setting
// (sendemail.smtpPass, github.token). The bottle must hold no real credential, so the
// staged copy loses all of them. What was removed is described without the values.
//
// Some keys name a file instead, and the secret is that file's content: a `store --file F`
// helper's token store, a helper or core.askPass program, http.cookieFile, a TLS client key
// or certificate, the key core.sshCommand passes with -i. The key goes, and the caller
// leaves the file out of the copy. The files
// include.path and includeIf.*.path pull in are config files like this one: the caller
// scrubs those that lie inside the copy as well.
import { statSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, isAbsolute, resolve } from "node:path";
import { run } from "../proc.ts";

/** The userinfo of a URL anywhere in a value, up to its last "@" before the path:
 * "https://me:p@ss@host/x" carries "me:p@ss" (git takes a "?" or "#" there as part of it). */
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)([^/\s]*)@/gi;
/** A URL's query and fragment, where a token rides when it is not userinfo
 * (?private_token=..., a signed URL's ?sig=...): dropped whole, whatever the parameters are
 * called, from a URL in any value (a remote's, an alias's). */
const URL_QUERY = /([a-z][a-z0-9+.-]*:\/\/[^\s?#]*)[?#]\S*/gi;
/** A proxy (http.proxy, remote.<name>.proxy) may leave out the scheme:
 * [user[:password]@]host[:port]. */
const PROXY_KEY = /\.proxy$/i;
const BARE_USERINFO = /^[^\s/]*@/;

/** ssh carries a user name, not a secret (ssh://git@host/x): kept unless it has a password. */
function withoutUserinfo(key: string | null, value: string): string {
  const v = value.replace(URL_USERINFO, (whole, scheme: string, info: string) => (/^(?:git\+)?ssh(?:\+git)?:\/\/$/i.test(scheme) && !info.includes(":") ? whole : scheme));
  return key !== null && PROXY_KEY.test(key) && !v.includes("://") ? v.replace(BARE_USERINFO, "") : v;
}
const withoutQuery = (value: string) => value.replace(URL_QUERY, "$1");
const clean = (key: string | null, value: string) => withoutQuery(withoutUserinfo(key, value));
const carriesCredential = (key: string | null, value: string) => clean(key, value) !== value;

/** Keys whose value is itself the secret, or that hand git one. */
const SECRET_KEY = /^credential\.|extraheader$|(?:password|passwd|token|secret|smtppass)$/i;
/** Keys that name a file whose content is a secret (a cookie jar, a TLS client key or
 * certificate, for the server or the proxy). */
const SECRET_FILE_KEY = /^http\.(?:.+\.)?(?:cookiefile|sslkey|sslcert|proxysslkey|proxysslcert)$/i;
const INCLUDE_KEY = /^include(?:if\..+)?\.path$/i;

interface Scrubbed {
  /** What went, described without values. */
  removed: string[];
  /** Host files the config named that hold a secret (secretFilesOf()): the caller leaves
   * them out of the copy. */
  leaveOut: string[];
  /** Host files the dropped include keys named, as git would open them: the caller scrubs
   * those that lie inside the copy too. */
  included: string[];
}

/** "section.sub.section.name" -> its section ("section.sub.section") and subsection ("sub.section"). */
function sectionOf(key: string): { section: string; sub: string | null } {
  const first = key.indexOf(".");
  const last = key.lastIndexOf(".");
  return { section: key.slice(0, last), sub: first === last ? null : key.slice(first + 1, last) };
}

const unquote = (word: string) => word.replace(/^(["'])(.*)\1$/, "$2");

/** The file a store helper names ("store --file ~/x", "store --file=x"). */
function storeFileOf(helper: string): string | null {
  const m = /(?:^|\s)store\b.*?--file(?:=|\s+)("[^"]*"|'[^']*'|\S+)/.exec(helper);
  return m ? unquote(m[1]!) : null;
}

/** The program a helper or askpass value runs when it is named by a path ("/x/helper",
 * "!~/bin/helper --get"); a bare name is git's own or on PATH, not in the checkout. */
function programOf(value: string): string | null {
  const m = /^!?\s*("[^"]*"|'[^']*'|\S+)/.exec(value.trim());
  const word = m ? unquote(m[1]!) : "";
  return word.includes("/") ? word : null;
}

/** The identity files an ssh command names (-i FILE, -o IdentityFile=FILE): a deploy key. */
const sshIdentities = (command: string) =>
  [...command.matchAll(/(?:^|\s)(?:-i\s*|-o\s*IdentityFile(?:=|\s+))("[^"]*"|'[^']*'|[^\s"']+)/gi)].map((m) => unquote(m[1]!));

type Describe = (file: string) => string;

/** The files a setting names whose content is a secret, each with how to describe it: a
 * cookie jar or TLS key, a program answering git's password prompt (core.askPass, a
 * helper), a store helper's token file, an ssh command's key. */
function secretFilesOf(key: string, value: string): [string, Describe][] {
  const byKey: Describe = (f) => `the file ${f} (named by ${key})`;
  const named = (f: string | null, what = byKey): [string, Describe][] => (f ? [[f, what]] : []);
  if (SECRET_FILE_KEY.test(key)) return named(value);
  if (/^core\.askpass$/i.test(key)) return named(programOf(value));
  if (/^core\.sshcommand$/i.test(key)) return sshIdentities(value).flatMap((f) => named(f));
  if (/^credential\.(?:.+\.)?helper$/i.test(key)) {
    return [...named(programOf(value)), ...named(storeFileOf(value), (f) => `the credential store file ${f} (named by a store helper)`)];
  }
  return [];
}

const isFile = (path: string) => {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

/** "~" and "~/x" as git expands them, else null. */
const inHome = (value: string) => (value === "~" || value.startsWith("~/") ? resolve(homedir(), value.slice(2)) : null);

/**
 * The paths a file setting may mean: "~/" is your home; a relative one is read from where
 * git runs, the top of the work tree, which is `base` (the checkout) or this config's own
 * repository's (a nested clone's, a bare repository's, a submodule's core.worktree).
 */
function filePaths(value: string, bases: string[]): string[] {
  const home = inHome(value);
  if (home !== null) return [home];
  if (isAbsolute(value)) return [value];
  return [...new Set(bases.map((b) => resolve(b, value)))];
}

/** Where an include path leads: relative to the file holding it, joined as git joins it
 * (no ".." folded away: the file system resolves it past any symlink). */
function includedPath(value: string, origin: string): string {
  return inHome(value) ?? (isAbsolute(value) ? value : `${dirname(origin)}/${value}`);
}

/**
 * Strip the credential-bearing entries from the git config file at `path` (a copy of the
 * host file `origin`); `base` is the checkout a relative file setting is read against. A
 * file git cannot read as config is removed whole: what in it is a credential cannot be
 * told apart, and git would not read it either.
 *
 * Include keys are dropped rather than kept for the scrubbed files they name: then git in
 * the bottle reads no included file at all, whether or not the path the caller scrubbed
 * is the one git would have opened (a "~user/" or "%(prefix)/" path, symlinks on the way).
 * The files themselves are scrubbed rather than left out because a repository often
 * includes a config it tracks (include.path = ../.gitconfig), which must not vanish from
 * the copy.
 */
export async function scrubGitCredentials(path: string, where: { origin: string; base: string }): Promise<Scrubbed> {
  const git = (args: string[], expect: readonly number[] = [0]) =>
    run(["git", "config", "--file", path, ...args], { expect, what: `Cannot clean the copied ${path}` });
  const listed = await git(["--no-includes", "--null", "--list"], [0, 1, 3, 128]);
  const out: Scrubbed = { removed: [], leaveOut: [], included: [] };
  if (listed.code !== 0) {
    await rm(path, { force: true });
    out.removed.push("the whole file (git cannot read it as config, so its credentials cannot be told apart from the rest)");
    return out;
  }
  const entries = listed.stdout
    .split("\0")
    .filter(Boolean)
    .map((e) => {
      const nl = e.indexOf("\n");
      return nl === -1 ? { key: e, value: "" } : { key: e.slice(0, nl), value: e.slice(nl + 1) };
    });

  const gitDir = dirname(where.origin);
  const worktree = entries.find((e) => e.key === "core.worktree")?.value;
  const ownTop = worktree ? resolve(gitDir, worktree) : basename(gitDir).toLowerCase() === ".git" ? dirname(gitDir) : gitDir;
  const secretFiles = new Map<string, Describe>();

  // A section named by a URL with a token in it ([url "https://x:TOKEN@host/"],
  // [http "https://u:p@host"]) goes whole: git cannot rename a subsection in place.
  const sections = new Set<string>();
  for (const { key } of entries) {
    const { section, sub } = sectionOf(key);
    if (sub !== null && carriesCredential(null, sub)) sections.add(section);
  }

  const rewrite = new Map<string, string[]>();
  const unset = new Set<string>();
  for (const { key, value } of entries) {
    // A key's file counts even when its section goes whole: that takes the key out of the
    // copy, not the file.
    if (INCLUDE_KEY.test(key)) out.included.push(includedPath(value, where.origin));
    const named = secretFilesOf(key, value);
    for (const [f, what] of named) for (const p of filePaths(f, [where.base, ownTop])) secretFiles.set(p, what);
    if (sections.has(sectionOf(key).section)) continue;
    if (INCLUDE_KEY.test(key) || SECRET_KEY.test(key) || named.length) {
      unset.add(key);
    } else if (!rewrite.has(key) && carriesCredential(key, value)) {
      rewrite.set(key, entries.filter((e) => e.key === key).map((e) => clean(key, e.value)));
    }
  }
  // Keep the URL, drop its userinfo and query (which also lets ~/.gitconfig's insteadOf
  // rewrite a remote to git-gate).
  for (const [key, values] of rewrite) {
    await git(["--unset-all", key]);
    for (const v of values) await git(["--add", key, v]);
    out.removed.push(`the credential in ${key}`);
  }
  for (const key of unset) {
    await git(["--unset-all", key], [0, 5]);
    out.removed.push(INCLUDE_KEY.test(key) ? `${key} (the bottle's git reads no included file)` : key);
  }
  for (const section of sections) {
    await git(["--remove-section", section]);
    const { sub } = sectionOf(`${section}.x`);
    const bare = withoutUserinfo(null, sub!);
    const shown = `${withoutQuery(bare !== sub ? bare.replace(/:\/\//, "://***@") : bare)}${withoutQuery(bare) !== bare ? "?***" : ""}`;
    out.removed.push(`a [${section.slice(0, section.indexOf("."))} "${shown}"] section whose URL carried a credential`);
  }
  for (const [f, what] of secretFiles) {
    out.leaveOut.push(f);
    if (isFile(f)) out.removed.push(what(f));
  }
  if (await rewriteWithoutComments(path)) out.removed.push("any comments (one may hold a credential no setting shows, such as an old remote's URL)");
  out.removed = [...new Set(out.removed)];
  return out;
}

/**
 * A comment is text git never reads, so no key above sees a token in one (a commented-out
 * remote URL, a note after a value). A file holding "#" or ";" anywhere is written anew
 * from git's own reading of its settings, in their order; true when it was.
 */
async function rewriteWithoutComments(path: string): Promise<boolean> {
  if (!/[#;]/.test(await readFile(path, "utf8"))) return false;
  const listed = await run(["git", "config", "--file", path, "--no-includes", "--null", "--list"], { what: `Cannot clean the copied ${path}` });
  let text = "";
  let current: string | null = null;
  for (const entry of listed.stdout.split("\0").filter(Boolean)) {
    const nl = entry.indexOf("\n");
    const key = nl === -1 ? entry : entry.slice(0, nl);
    const { section, sub } = sectionOf(key);
    if (section !== current) {
      const name = sub === null ? section : section.slice(0, section.indexOf("."));
      text += sub === null ? `[${name}]\n` : `[${name} "${sub.replace(/["\\]/g, "\\$&")}"]\n`;
      current = section;
    }
    // No value ("[core] bare") is git's true; any value goes quoted, escaped as git reads it.
    text += nl === -1 ? `\t${key.slice(key.lastIndexOf(".") + 1)}\n` : `\t${key.slice(key.lastIndexOf(".") + 1)} = ${quoteValue(entry.slice(nl + 1))}\n`;
  }
  await writeFile(path, text);
  return true;
}

const quoteValue = (v: string) => `"${v.replace(/["\\]/g, "\\$&").replace(/\n/g, "\\n").replace(/\t/g, "\\t").replace(/\x08/g, "\\b")}"`;
