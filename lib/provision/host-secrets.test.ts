// What of the host reaches the bottle through a copied checkout (--cwd): each test builds a
// checkout the way git (or someone else) leaves one, runs the real stage(), unpacks its
// tars as the guest script does, and looks for the secret in every file of the result.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../proc.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { samplePlan } from "../../tests/support/plans.ts";
import type { Plan } from "../plan/schema.ts";
import { AGENT } from "../layout.ts";
import { stage } from "./stage.ts";

type Ready = Plan & { bundle: NonNullable<Plan["bundle"]>; vm: NonNullable<Plan["vm"]> };
const SECRET = "hostsecret0123456789abcdef";

async function readyPlan(dir: string): Promise<Ready> {
  await writeFile(join(dir, "ca.pem"), "-----BEGIN CERTIFICATE-----\nX\n");
  const p = samplePlan();
  return {
    ...p,
    files: { ...p.files, dir: join(dir, "state", "bottles", p.slug) },
    bundle: {
      container: "c", image: "i", networks: { internal: "n", egress: "e" }, networkIds: null, caCert: join(dir, "ca.pem"),
      agentUrls: { proxy: "http://firewall:8888", gitGate: null, supervise: null }, hostPorts: null, loopbackAddr: null, startedAt: "t",
    },
    vm: { kind: "docker", image: "a", imageId: null, name: "v", id: null, artifact: null, user: "node", home: "/home/node", env: {}, startedAt: "t" },
  };
}

/** Stage `checkout`, unpack it as the guest script does; every file of the bottle's tree with its text, every symlink with
 * its target, and what stage() said it removed. */
async function bottleFiles(dir: string, checkout: string): Promise<{ files: Map<string, string>; links: Map<string, string>; scrubbed: string[] }> {
  const staged = await stage(await readyPlan(dir), { cwd: checkout });
  const root = join(dir, "guest");
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  await run(["tar", "-x", "--no-same-owner", "-C", root, "-f", staged.tarFile]);
  const wd = join(root, AGENT.workdir);
  await run(["tar", "-x", "--no-same-owner", "--no-overwrite-dir", "-C", wd, "-f", join(root, AGENT.checkoutTar)]);
  if (existsSync(join(root, AGENT.gitDirTar))) await run(["tar", "-x", "--no-same-owner", "-C", join(wd, ".git"), "-f", join(root, AGENT.gitDirTar)]);
  await rm(join(root, AGENT.checkoutTar), { force: true });
  await rm(join(root, AGENT.gitDirTar), { force: true });
  await staged.cleanup();
  const files = new Map<string, string>();
  const links = new Map<string, string>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) files.set(p.slice(wd.length + 1), readFileSync(p, "latin1"));
      else if (st.isSymbolicLink()) links.set(p.slice(wd.length + 1), readlinkSync(p));
    }
  };
  walk(wd);
  return { files, links, scrubbed: staged.scrubbed };
}
const leaks = (files: Map<string, string>) => [...files].filter(([, c]) => c.includes(SECRET)).map(([p]) => p);
const env = (dir: string) => ({ GIT_CONFIG_GLOBAL: join(dir, "gc"), GIT_CONFIG_NOSYSTEM: "1", GIT_ALLOW_PROTOCOL: "file" });
async function git(dir: string, cwd: string, ...args: string[]) {
  return (await run(["git", ...args], { cwd, env: env(dir) })).stdout.trim();
}
async function repo(dir: string, path: string) {
  await run(["git", "init", "-q", "-b", "main", path], { env: env(dir) });
  await writeFile(join(path, "f.txt"), "x\n");
  await git(dir, path, "add", ".");
  await git(dir, path, "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-q", "-m", "c");
}
async function checkout(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t);
  await writeFile(join(dir, "gc"), "");
  const co = join(dir, "checkout");
  await repo(dir, co);
  return { dir, co };
}

test("a submodule's URL and its own config lose the token the host cloned with, and the submodule still works", async (t) => {
  const dir = await tempDir(t);
  const upstreams = join(dir, "upstreams");
  await repo(dir, join(upstreams, "sub.git"));
  // The token URL resolves locally (no network); what git stores is still the token URL.
  await writeFile(join(dir, "gc"), `[url "${upstreams}/"]\n\tinsteadOf = https://ci:${SECRET}@git.example.test/\n[protocol "file"]\n\tallow = always\n`);
  const co = join(dir, "checkout");
  await repo(dir, co);
  await git(dir, co, "remote", "add", "origin", `https://ci:${SECRET}@git.example.test/super.git`);
  await git(dir, co, "submodule", "add", "-q", "../sub.git", "sub"); // as clone --recurse-submodules leaves it
  assert.ok(existsSync(join(co, ".git", "modules", "sub", "config")));
  const { files, scrubbed } = await bottleFiles(dir, co);
  assert.deepEqual(leaks(files), []);
  assert.match(files.get(".git/config")!, /url = https:\/\/git\.example\.test\/sub\.git/);
  assert.match(files.get(".git/modules/sub/config")!, /worktree = \.\.\/\.\.\/\.\.\/sub/, "the rest of the submodule's config stays");
  assert.ok(scrubbed.some((s) => s.startsWith(".git/modules/sub/config: the credential in remote.origin.url")), scrubbed.join("\n"));
  assert.doesNotMatch(scrubbed.join("\n"), new RegExp(SECRET));
});

test("a nested clone's .git/config is scrubbed like the checkout's own", async (t) => {
  const { dir, co } = await checkout(t);
  await repo(dir, join(co, "vendor", "lib"));
  await git(dir, join(co, "vendor", "lib"), "config", "http.extraHeader", `Authorization: Bearer ${SECRET}`);
  const { files, scrubbed } = await bottleFiles(dir, co);
  assert.deepEqual(leaks(files), []);
  assert.ok(files.has("vendor/lib/.git/config") && files.has("vendor/lib/f.txt"));
  assert.ok(scrubbed.includes("vendor/lib/.git/config: http.extraheader"), scrubbed.join("\n"));
});

test("config.worktree is scrubbed, in a plain checkout and in a linked worktree", async (t) => {
  const { dir, co } = await checkout(t);
  await git(dir, co, "config", "extensions.worktreeConfig", "true");
  await git(dir, co, "config", "--worktree", "http.extraHeader", `Authorization: Bearer ${SECRET}`);
  assert.deepEqual(leaks((await bottleFiles(dir, co)).files), []);

  const wt = join(dir, "wt");
  await git(dir, co, "worktree", "add", "-q", "-b", "feat", wt);
  await git(dir, wt, "config", "--worktree", "credential.helper", `!echo password=${SECRET}`);
  const { files, scrubbed } = await bottleFiles(dir, wt);
  assert.deepEqual(leaks(files), []);
  assert.ok(files.has(".git/config.worktree"), "the worktree's own config.worktree comes, scrubbed");
  assert.ok(scrubbed.includes(".git/config.worktree: credential.helper"), scrubbed.join("\n"));
});

for (const [name, key, value, kept] of [
  ["http.proxy", "http.proxy", `http://me:${SECRET}@proxy.example.test:3128`, "http://proxy.example.test:3128"],
  ["a remote's proxy", "remote.origin.proxy", `http://me:${SECRET}@proxy.example.test:3128`, "http://proxy.example.test:3128"],
  ["lfs.url", "lfs.url", `https://me:${SECRET}@lfs.example.test/x`, "https://lfs.example.test/x"],
  ["a password holding a raw '@'", "remote.origin.url", `https://me:p@${SECRET}@git.example.test/x.git`, "https://git.example.test/x.git"],
  ["an ssh URL with a password", "remote.origin.url", `ssh://git:${SECRET}@git.example.test/x.git`, "ssh://git.example.test/x.git"],
  ["sendemail.smtpPass", "sendemail.smtpPass", SECRET, null],
  ["github.token", "github.token", SECRET, null],
  ["a section named by a URL with a token", `http.https://u:${SECRET}@git.example.test/.sslVerify`, "false", null],
] as const) {
  test(`${name} loses its credential in the copy`, async (t) => {
    const { dir, co } = await checkout(t);
    await git(dir, co, "config", key, value);
    const { files } = await bottleFiles(dir, co);
    assert.deepEqual(leaks(files), []);
    if (kept) assert.ok(files.get(".git/config")!.includes(kept), files.get(".git/config"));
  });
}

test("credentials outside URLs' userinfo go too: a proxy without a scheme, a token in a query, an included file, a cookie jar, a nested bare repository", async (t) => {
  const { dir, co } = await checkout(t);
  await git(dir, co, "config", "http.proxy", `alice:${SECRET}@proxy.example.test:3128`);
  await git(dir, co, "config", "remote.origin.proxy", `bob:${SECRET}@proxy2.example.test:8080`);
  await git(dir, co, "config", "remote.mirror.url", `https://gitlab.example.test/a/x.git?private_token=${SECRET}`);
  await git(dir, co, "config", "include.path", "extra.inc");
  await writeFile(join(co, ".git", "extra.inc"), `[http]\n\textraHeader = Authorization: Bearer ${SECRET}\n[include]\n\tpath = more.inc\n`);
  await writeFile(join(co, ".git", "more.inc"), `[remote "origin"]\n\turl = https://ci:${SECRET}@git.example.test/x.git\n[user]\n\tname = Kept\n`);
  await git(dir, co, "config", "http.cookieFile", ".git/cookies");
  await writeFile(join(co, ".git", "cookies"), `git.example.test\tFALSE\t/\tTRUE\t0\tsession\t${SECRET}\n`);
  await run(["git", "init", "-q", "--bare", join(co, "mirror.git")], { env: env(dir) });
  await git(dir, join(co, "mirror.git"), "config", "remote.origin.url", `https://carol:${SECRET}@github.com/c/x.git`);

  const { files, scrubbed } = await bottleFiles(dir, co);
  assert.deepEqual(leaks(files), []);
  assert.ok(!files.has(".git/cookies"), "the cookie jar was copied");
  const config = files.get(".git/config")!;
  assert.match(config, /proxy = proxy\.example\.test:3128/);
  assert.match(config, /url = https:\/\/gitlab\.example\.test\/a\/x\.git\n/);
  assert.doesNotMatch(config, /include|cookie/i, "the include and cookieFile keys stayed");
  assert.match(files.get(".git/more.inc")!, /name = Kept/, "an included file comes scrubbed, the rest of it kept");
  assert.match(files.get("mirror.git/config")!, /url = https:\/\/github\.com\/c\/x\.git/);
  for (const line of [
    ".git/config: the credential in http.proxy",
    ".git/config: the credential in remote.origin.proxy",
    ".git/config: the credential in remote.mirror.url",
    ".git/config: include.path (the bottle's git reads no included file)",
    `.git/config: the file ${join(co, ".git", "cookies")} (named by http.cookiefile)`,
    ".git/extra.inc: http.extraheader",
    ".git/more.inc: the credential in remote.origin.url",
    "mirror.git/config: the credential in remote.origin.url",
  ]) assert.ok(scrubbed.includes(line), `${line} not in:\n${scrubbed.join("\n")}`);
});

test("a tracked config the repository includes stays in the copy; a config git cannot read is left out, and said so", async (t) => {
  const { dir, co } = await checkout(t);
  await writeFile(join(co, ".gitconfig"), "[alias]\n\tst = status\n");
  await git(dir, co, "add", ".gitconfig");
  await git(dir, co, "-c", "user.name=T", "-c", "user.email=t@e", "commit", "-q", "-m", "shared config");
  await git(dir, co, "config", "include.path", "../.gitconfig");
  await run(["git", "init", "-q", "--bare", join(co, "broken.git")], { env: env(dir) });
  await writeFile(join(co, "broken.git", "config"), `[remote "origin"\n\turl = https://x:${SECRET}@git.example.test/x.git\n`);

  const { files, scrubbed } = await bottleFiles(dir, co);
  assert.deepEqual(leaks(files), []);
  assert.equal(files.get(".gitconfig"), "[alias]\n\tst = status\n");
  assert.ok(!files.has("broken.git/config"), "the unreadable config was copied");
  assert.ok(scrubbed.includes("broken.git/config: the whole file (git cannot read it as config, so its credentials cannot be told apart from the rest)"), scrubbed.join("\n"));
});

test("an ssh URL's user name is not a secret and stays (~/.gitconfig's insteadOf matches it)", async (t) => {
  const { dir, co } = await checkout(t);
  await git(dir, co, "remote", "add", "origin", "ssh://git@git.example.test/x.git");
  const { files, scrubbed } = await bottleFiles(dir, co);
  assert.match(files.get(".git/config")!, /url = ssh:\/\/git@git\.example\.test\/x\.git/);
  assert.deepEqual(scrubbed, []);
});

test("a .git file is believed only when the git dir it names points back: one naming ~/.aws or another checkout's .git, directly or through a symlink, is refused", async (t) => {
  const dir = await tempDir(t);
  const aws = join(dir, "home", ".aws");
  await mkdir(aws, { recursive: true });
  await writeFile(join(aws, "config"), "[default]\nregion = us-east-1\n");
  await writeFile(join(aws, "credentials"), `[default]\naws_secret_access_key = ${SECRET}\n`);
  const co = join(dir, "checkout");
  await mkdir(join(co, ".meta"), { recursive: true });
  await writeFile(join(co, ".git"), "gitdir: .meta\n");
  await writeFile(join(co, ".meta", "HEAD"), "ref: refs/heads/main\n");
  await writeFile(join(co, ".meta", "commondir"), `${aws}\n`);
  await writeFile(join(co, ".meta", "gitdir"), `${join(co, ".git")}\n`); // the checkout can write this half, not the other
  await assert.rejects(stage(await readyPlan(dir), { cwd: co }), /names .*\.meta as its git dir, but that git dir is not a worktree of .*\.aws whose checkout is/);

  await writeFile(join(dir, "gc"), "");
  const other = join(dir, "private");
  await repo(dir, other);
  await writeFile(join(co, ".git"), `gitdir: ${join(other, ".git")}\n`);
  await assert.rejects(stage(await readyPlan(dir), { cwd: co }), /but that is the \.git folder of another checkout \(.*private\)/);
  await symlink(join(other, ".git"), join(co, "evil"));
  await writeFile(join(co, ".git"), "gitdir: evil\n");
  await assert.rejects(stage(await readyPlan(dir), { cwd: co }), /evil \(which is .*private\/\.git\) as its git dir, but that is the \.git folder of another checkout \(.*private\)/);
  assert.ok(!existsSync(join((await readyPlan(dir)).files.dir, "provision")), "nothing staged is left behind");
});

test("a .git/config or .git that is a symlink stays a link: the file it names is never copied", async (t) => {
  const { dir, co } = await checkout(t);
  const mycnf = join(dir, "home", ".my.cnf");
  await mkdir(join(dir, "home"), { recursive: true });
  await writeFile(mycnf, `[client]\npassword = ${SECRET}\n`);
  await rm(join(co, ".git", "config"));
  await symlink(mycnf, join(co, ".git", "config"));
  const copied = await bottleFiles(dir, co);
  assert.deepEqual(leaks(copied.files), []);
  assert.deepEqual([...copied.links], [[".git/config", mycnf]], "the .git/config link did not come as the same link");

  const linkCo = join(dir, "link-checkout");
  await mkdir(linkCo);
  await symlink(join(co, ".git"), join(linkCo, ".git"));
  const linked = await bottleFiles(dir, linkCo);
  assert.deepEqual(leaks(linked.files), []);
  assert.deepEqual([...linked.links], [[".git", join(co, ".git")]], "the .git link did not come as the same link");
});

test("a credential store file a helper names inside the checkout is left out of the copy", async (t) => {
  const { dir, co } = await checkout(t);
  await writeFile(join(co, ".git", "git-credentials"), `https://me:${SECRET}@git.example.test\n`);
  await git(dir, co, "config", "credential.helper", `store --file=${join(co, ".git", "git-credentials")}`);
  const { files, scrubbed } = await bottleFiles(dir, co);
  assert.deepEqual(leaks(files), []);
  assert.ok(!files.has(".git/git-credentials"));
  assert.ok(scrubbed.some((s) => s.includes("the credential store file")), scrubbed.join("\n"));
});

test("symlinks in the checkout stay links, and the usual credentials go", async (t) => {
  const { dir, co } = await checkout(t);
  const ssh = join(dir, "home", ".ssh");
  await mkdir(ssh, { recursive: true });
  await writeFile(join(ssh, "id_ed25519"), SECRET);
  await symlink(ssh, join(co, "keys"));
  await symlink(join(ssh, "id_ed25519"), join(co, "key"));
  await symlink(join(ssh, "id_ed25519"), join(co, ".git", "hooks", "pre-commit"));
  await git(dir, co, "remote", "add", "origin", `https://ci:${SECRET}@git.example.test/x.git`);
  await git(dir, co, "config", "http.https://git.example.test/.extraHeader", `Authorization: Basic ${SECRET}`);
  await git(dir, co, "config", `url.https://u:${SECRET}@git.example.test/.insteadOf`, "https://git.example.test/");
  const { files, links } = await bottleFiles(dir, co);
  assert.deepEqual(leaks(files), []);
  assert.equal(files.get("f.txt"), "x\n");
  assert.deepEqual(new Map([...links].sort()), new Map([
    [".git/hooks/pre-commit", join(ssh, "id_ed25519")],
    ["key", join(ssh, "id_ed25519")],
    ["keys", ssh],
  ]));
});
