import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { run } from "../../lib/proc.ts";
import type { GitGateConfig } from "../../lib/sidecar-config.ts";
import { createRegistry, normalizeRepoPath, pinnedKnownHosts, redactUrl, upstreamEnv } from "./repos.ts";

const config = (over: Partial<GitGateConfig> = {}): GitGateConfig => ({
  version: 1,
  upstreams: [{ host: "github.com", url: "git@github.com:", identity: null, hostKeys: null }],
  repos: ["github.com/acme/widget"],
  push: { allowedRefs: [], protectedBranches: [], protectedPaths: [], dlp: true },
  dlp: { disabled: [], sensitive: [] },
  ...over,
});

describe("git-gate repo registry", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bb-repos-test-"));
    await writeFile(join(dir, "deploy_key"), "not really a key\n");
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("normalizeRepoPath() strips slashes and .git, refuses traversal and short paths", () => {
    assert.equal(normalizeRepoPath("/github.com/acme/widget.git/"), "github.com/acme/widget");
    assert.equal(normalizeRepoPath("/gitlab.com/group/sub/repo"), "gitlab.com/group/sub/repo");
    assert.equal(normalizeRepoPath("/github.com/acme/../etc"), null);
    assert.equal(normalizeRepoPath("/github.com/widget"), null);
  });

  it("maps a declared repo to its upstream URL (scp-like or URL) and a mirror under the data dir", () => {
    const reg = createRegistry(config(), { data: dir, identities: null });
    const found = reg.lookup("/github.com/acme/widget.git");
    assert.ok(found.ok);
    assert.equal(found.repo.url, "git@github.com:acme/widget");
    assert.equal(found.repo.dir, join(dir, "repos/github.com/acme/widget.git"));
    const https = createRegistry(config({ upstreams: [{ host: "github.com", url: "https://github.com", identity: null, hostKeys: null }] }), { data: dir, identities: null });
    assert.equal(https.repos.get("github.com/acme/widget")!.url, "https://github.com/acme/widget");
  });

  it("refuses config it cannot serve: repo without upstream, identity missing from the identities dir", () => {
    assert.throws(() => createRegistry(config({ repos: ["gitlab.com/a/b"] }), { data: dir, identities: null }), /no upstream for host gitlab\.com/);
    const withKey = config({ upstreams: [{ host: "github.com", url: "git@github.com:", identity: "other_key", hostKeys: null }] });
    assert.throws(() => createRegistry(withKey, { data: dir, identities: dir }), /Identity other_key for github\.com is not in/);
  });

  const SSH_KEEPALIVE = "ssh -o ConnectTimeout=30 -o ServerAliveInterval=15 -o ServerAliveCountMax=4";

  it("upstreamEnv() points ssh at the identity only the gate holds, and gives up on a stalled upstream over ssh or http", () => {
    const env = upstreamEnv({ host: "github.com", url: "git@github.com:", identity: "deploy_key", hostKeys: null }, { data: dir, identities: dir });
    assert.equal(env.GIT_SSH_COMMAND, `${SSH_KEEPALIVE} -i ${dir}/deploy_key -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=${dir}/known_hosts`);
    const https = upstreamEnv({ host: "h", url: "u", identity: null, hostKeys: null }, { data: dir, identities: null });
    assert.equal(https.GIT_SSH_COMMAND, undefined);
    assert.deepEqual([https.GIT_HTTP_LOW_SPEED_LIMIT, https.GIT_HTTP_LOW_SPEED_TIME], ["1000", "60"]);
  });

  it("a pinned host key replaces trust on first use: ssh checks strictly against only the declared keys", async () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1bWJlcmphY2tzIGFyZSBub3QgcmVhbCBrZXlz";
    const pinned = { host: "git.example.test", url: "ssh://git@git.example.test:2222", identity: "deploy_key", hostKeys: [key] };
    const reg = createRegistry(config({ upstreams: [pinned], repos: ["git.example.test/a/b"] }), { data: dir, identities: dir });
    const file = pinnedKnownHosts(pinned, { data: dir, identities: dir });
    assert.equal(await readFile(file, "utf8"), `bb-upstream.git.example.test ${key}\n`);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal(
      upstreamEnv(reg.repos.get("git.example.test/a/b")!.upstream, { data: dir, identities: dir }).GIT_SSH_COMMAND,
      `${SSH_KEEPALIVE} -i ${dir}/deploy_key -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${file} -o HostKeyAlias=bb-upstream.git.example.test`,
    );
  });

  it("a mirror made from one upstream URL fetches from the config's URL once it changes (a resumed bottle whose upstream moved)", async () => {
    const git = async (...args: string[]) => (await run(["git", ...args], { what: "test git" })).stdout.trim();
    const upstreamAt = async (base: string, branch: string) => {
      const work = join(dir, `${branch}-work`);
      await git("init", "--quiet", "-b", branch, work);
      await git("-C", work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "--allow-empty", "-m", branch);
      await git("clone", "--quiet", "--bare", work, join(base, "acme/widget"));
    };
    const [first, second] = [join(dir, "up-first"), join(dir, "up-second")];
    await upstreamAt(first, "first");
    await upstreamAt(second, "second");
    const at = (base: string) => config({ upstreams: [{ host: "git.example.test", url: base, identity: null, hostKeys: null }], repos: ["git.example.test/acme/widget"] });
    const dirs = { data: join(dir, "moved-data"), identities: null };
    const before = createRegistry(at(first), dirs);
    await before.sync(before.repos.get("git.example.test/acme/widget")!);
    const after = createRegistry(at(second), dirs);
    const repo = after.repos.get("git.example.test/acme/widget")!;
    await after.sync(repo);
    const refs = await git("--git-dir", repo.dir, "for-each-ref", "--format=%(refname)");
    assert.equal(refs, "refs/heads/second", "the mirror holds the upstream the config names now, and nothing of the old one");
  });

  it("redactUrl() drops user:password@ from messages", () => {
    assert.equal(redactUrl("https://x-access-token:abc@github.com/acme/w"), "https://github.com/acme/w");
  });
});
