// A host checkout copied into the bottle (--cwd) brings its .git/config along, and with it
// whatever credentials the host keeps there: a token in a remote's URL
// (https://user:TOKEN@host/...), an http.extraHeader carrying Authorization (what CI
// checkouts write), a url.<base>.insteadOf whose base holds a token, credential helpers.
// The bottle must hold no real credential, so the staged copy loses all of them. What was
// removed is described without the values.
import { run } from "../proc.ts";

/** "scheme://user:secret@host/..." or "scheme://token@host/...": a URL carrying userinfo. */
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)[^/@]+@/i;

/** Strip the credential-bearing entries from the git config file at `path`; returns what went. */
export async function scrubGitCredentials(path: string): Promise<string[]> {
  const git = (args: string[], expect: readonly number[] = [0]) =>
    run(["git", "config", "--file", path, ...args], { expect, what: `Cannot clean the copied ${path}` });
  const entries = async (pattern: string) =>
    (await git(["--null", "--get-regexp", pattern], [0, 1])).stdout
      .split("\0")
      .filter(Boolean)
      .map((e) => {
        const nl = e.indexOf("\n");
        return nl === -1 ? { key: e, value: "" } : { key: e.slice(0, nl), value: e.slice(nl + 1) };
      });
  const removed: string[] = [];

  // Remote URLs: keep the URL, drop its userinfo (which also lets ~/.gitconfig's
  // insteadOf rewrite it to git-gate).
  const urls = await entries("^remote\\..*\\.(url|pushurl)$");
  for (const key of new Set(urls.filter((u) => USERINFO.test(u.value)).map((u) => u.key))) {
    const values = urls.filter((u) => u.key === key).map((u) => u.value.replace(USERINFO, "$1"));
    await git(["--unset-all", key]);
    for (const v of values) await git(["--add", key, v]);
    removed.push(`the credential in ${key}`);
  }
  for (const { key } of await entries("^http\\..*extraheader$")) {
    await git(["--unset-all", key], [0, 5]);
    removed.push(key);
  }
  for (const { key } of await entries("^credential\\.")) {
    await git(["--unset-all", key], [0, 5]);
    removed.push(key);
  }
  // A rewrite rule whose base holds the token: the whole [url "..."] section goes.
  const bases = (await entries("^url\\..*\\.(insteadof|pushinsteadof)$")).map((e) => e.key.replace(/\.(insteadof|pushinsteadof)$/, ""));
  for (const section of new Set(bases.filter((b) => USERINFO.test(b.slice("url.".length))))) {
    await git(["--remove-section", section]);
    removed.push(`a url.<base>.insteadOf rule whose base carried a credential (${section.slice("url.".length).replace(USERINFO, "$1***@")})`);
  }
  return [...new Set(removed)];
}
