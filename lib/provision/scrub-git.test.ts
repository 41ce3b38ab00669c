// scrubGitCredentials() against real git config files, read back with git itself.
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { run } from "../proc.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { scrubGitCredentials } from "./scrub-git.ts";

const TOKEN = "ghp_0123456789abcdefghijABCDEFGHIJ012345";

test("the copied .git/config loses every credential and keeps everything else", async (t) => {
  const file = join(await tempDir(t), "config");
  await writeFile(file, [
    "[core]", "\trepositoryformatversion = 0",
    '[remote "origin"]', `\turl = https://x-access-token:${TOKEN}@github.com/acme/widget.git`, "\tfetch = +refs/heads/*:refs/remotes/origin/*",
    `\tpushurl = https://bot:${TOKEN}@github.com/acme/widget.git`, "\tpushurl = git@github.com:acme/widget.git",
    '[remote "upstream"]', "\turl = https://github.com/acme/upstream.git",
    '[http "https://github.com/"]', `\textraheader = AUTHORIZATION: basic ${Buffer.from(`x:${TOKEN}`).toString("base64")}`,
    "[http]", "\textraHeader = Authorization: Bearer abc", "\tsslVerify = true",
    "[credential]", "\thelper = store",
    '[credential "https://gitlab.example.com"]', "\tusername = me",
    `[url "https://x-access-token:${TOKEN}@github.com/"]`, "\tinsteadOf = https://github.com/",
    '[url "git@github.com:"]', "\tpushInsteadOf = https://github.com/",
    '[branch "main"]', "\tremote = origin",
  ].join("\n") + "\n");

  const { removed } = await scrubGitCredentials(file, "/checkout");
  const text = await readFile(file, "utf8");
  assert.doesNotMatch(text, new RegExp(TOKEN), text);
  assert.doesNotMatch(text, /extraheader|helper|username|Bearer|basic /i, text);
  const get = async (key: string) => (await run(["git", "config", "--file", file, "--get-all", key], { expect: [0, 1] })).stdout.trim().split("\n");
  assert.deepEqual(await get("remote.origin.url"), ["https://github.com/acme/widget.git"]);
  assert.deepEqual(await get("remote.origin.pushurl"), ["https://github.com/acme/widget.git", "git@github.com:acme/widget.git"]);
  assert.deepEqual(await get("remote.origin.fetch"), ["+refs/heads/*:refs/remotes/origin/*"]);
  assert.deepEqual(await get("remote.upstream.url"), ["https://github.com/acme/upstream.git"]);
  assert.deepEqual(await get("http.sslverify"), ["true"]);
  assert.deepEqual(await get("url.git@github.com:.pushinsteadof"), ["https://github.com/"]);
  assert.deepEqual(await get("branch.main.remote"), ["origin"]);
  assert.ok(removed.length >= 6, removed.join("\n"));
  assert.doesNotMatch(removed.join("\n"), new RegExp(TOKEN), "the report never carries the secret");
});

test("a .git/config without credentials is left as it was", async (t) => {
  const file = join(await tempDir(t), "config");
  const text = '[core]\n\tbare = false\n[remote "origin"]\n\turl = git@github.com:acme/widget.git\n';
  await writeFile(file, text);
  assert.deepEqual(await scrubGitCredentials(file, "/checkout"), { removed: [], storeFiles: [] });
  assert.equal(await readFile(file, "utf8"), text);
});
