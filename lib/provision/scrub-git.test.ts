// scrubGitCredentials() against real git config files, read back with git itself.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
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

  const { removed } = await scrubGitCredentials(file, { origin: file, base: "/checkout" });
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
  assert.deepEqual(await scrubGitCredentials(file, { origin: file, base: "/checkout" }), { removed: [], leaveOut: [], included: [] });
  assert.equal(await readFile(file, "utf8"), text);
});

test("a proxy without a scheme, and a URL's query, lose their credential; the rest of the value stays", async (t) => {
  const file = join(await tempDir(t), "config");
  await writeFile(file, [
    "[http]", "\tproxy = alice:PROXYPASS@proxy.corp:3128",
    '[http "https://git.example.test/"]', "\tproxy = bob@proxy2.corp",
    '[remote "origin"]', "\turl = https://github.com/acme/widget.git", "\tproxy = carol:REMOTEPASS@proxy3.corp:8080",
    '[remote "mirror"]', "\turl = https://gitlab.example/acme/x.git?private_token=glpat-QUERYTOKEN", '\tpushurl = "https://gitlab.example/acme/x.git#frag-TOKEN"',
    '[url "https://gitlab.example/?private_token=glpat-SECTIONTOKEN"]', "\tinsteadOf = gl:",
  ].join("\n") + "\n");
  const { removed } = await scrubGitCredentials(file, { origin: file, base: "/checkout" });
  const text = await readFile(file, "utf8");
  assert.doesNotMatch(text, /PASS|TOKEN|alice|bob|carol/, text);
  const get = async (key: string) => (await run(["git", "config", "--file", file, "--get-all", key], { expect: [0, 1] })).stdout.trim();
  assert.equal(await get("http.proxy"), "proxy.corp:3128");
  assert.equal(await get("http.https://git.example.test/.proxy"), "proxy2.corp");
  assert.equal(await get("remote.origin.proxy"), "proxy3.corp:8080");
  assert.equal(await get("remote.origin.url"), "https://github.com/acme/widget.git");
  assert.equal(await get("remote.mirror.url"), "https://gitlab.example/acme/x.git");
  assert.equal(await get("remote.mirror.pushurl"), "https://gitlab.example/acme/x.git");
  assert.deepEqual(removed.sort(), [
    'a [url "https://gitlab.example/?***"] section whose URL carried a credential',
    "the credential in http.https://git.example.test/.proxy",
    "the credential in http.proxy",
    "the credential in remote.mirror.pushurl",
    "the credential in remote.mirror.url",
    "the credential in remote.origin.proxy",
  ]);
});

test("keys naming a secret file go, and the files are named for leaving out; include keys go, naming what they include", async (t) => {
  const dir = await tempDir(t);
  const checkout = join(dir, "checkout");
  const file = join(checkout, ".git", "config");
  await mkdir(join(checkout, ".git"), { recursive: true });
  for (const f of ["cookies", "client.key", "askpass.sh", "helper.sh", "deploy_key"]) await writeFile(join(checkout, ".git", f), "secret\n");
  await writeFile(file, [
    "[core]", "\taskPass = .git/askpass.sh", "\tsshCommand = ssh -i .git/deploy_key -o IdentitiesOnly=yes",
    "[http]", "\tcookieFile = .git/cookies", "\tsslCAInfo = /etc/ssl/ca.pem",
    '[http "https://git.example.test/"]', `\tsslKey = ${join(checkout, ".git", "client.key")}`,
    "[credential]", `\thelper = !${join(checkout, ".git", "helper.sh")} --get`,
    "[include]", "\tpath = extra.inc",
    '[includeIf "gitdir:~/work/"]', "\tpath = ~/work.inc",
  ].join("\n") + "\n");
  const copy = join(dir, "copy");
  await writeFile(copy, await readFile(file));
  const s = await scrubGitCredentials(copy, { origin: file, base: checkout });
  const text = await readFile(copy, "utf8");
  assert.doesNotMatch(text, /askpass|sshcommand|cookie|sslkey|helper|path/i, text);
  assert.match(text, /sslCAInfo = \/etc\/ssl\/ca\.pem/, "a CA file is no secret, and stays");
  for (const f of ["cookies", "client.key", "askpass.sh", "helper.sh", "deploy_key"]) assert.ok(s.leaveOut.includes(join(checkout, ".git", f)), `${f} is not left out: ${s.leaveOut.join(", ")}`);
  assert.deepEqual(s.included, [`${join(checkout, ".git")}/extra.inc`, join(homedir(), "work.inc")]);
  assert.ok(s.removed.includes(`the file ${join(checkout, ".git", "cookies")} (named by http.cookiefile)`), s.removed.join("\n"));
  assert.ok(s.removed.includes(`the file ${join(checkout, ".git", "askpass.sh")} (named by core.askpass)`), s.removed.join("\n"));
  assert.ok(s.removed.includes("include.path (the bottle's git reads no included file)"), s.removed.join("\n"));
});

test("a config git cannot read is removed whole, and says so", async (t) => {
  const file = join(await tempDir(t), "config");
  await writeFile(file, `[remote "origin"\n\turl = https://x:${TOKEN}@github.com/acme/widget.git\n`);
  const { removed } = await scrubGitCredentials(file, { origin: file, base: "/checkout" });
  assert.ok(!existsSync(file), "the unreadable copy is still there");
  assert.deepEqual(removed, ["the whole file (git cannot read it as config, so its credentials cannot be told apart from the rest)"]);
});

test("comments go, with any token in them; every setting reads back as it was, odd characters included", async (t) => {
  const file = join(await tempDir(t), "config");
  await writeFile(file, [
    "# old remote: https://me:" + TOKEN + "@github.com/acme/widget.git",
    "[core]", "\tbare = false ; " + TOKEN, "\tlogAllRefUpdates",
    '[remote "origin"]', "\turl = git@github.com:acme/widget.git   # " + TOKEN,
    '\tfetch = "+refs/heads/*:refs/remotes/origin/*"',
    '[alias]', '\tsay = "!echo \\"a;b#c\\" \\\\ done\\tx"',
    '[branch "we\\"ird"]', "\tremote = origin",
    "[core]", "\tautocrlf = input",
  ].join("\n") + "\n");
  const list = async () => (await run(["git", "config", "--file", file, "--null", "--list"])).stdout;
  const before = await list();
  const { removed } = await scrubGitCredentials(file, { origin: file, base: "/checkout" });
  const text = await readFile(file, "utf8");
  assert.doesNotMatch(text, new RegExp(TOKEN), text);
  assert.equal(await list(), before, "the settings, in order, are git's reading of the original");
  assert.ok(removed.some((r) => /comments/.test(r)), removed.join("\n"));
});
