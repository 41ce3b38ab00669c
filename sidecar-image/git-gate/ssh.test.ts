// git-gate against an upstream reached over SSH, the way a real bottle reaches GitHub: a
// real sshd on 127.0.0.1 (Debian's openssh-server) that accepts one key, git-gate holding
// that key as the upstream's identity, and the agent side speaking git:// to the gate with
// no key at all. Skipped, saying why, where sshd is not installed (.ci/run installs it).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chmod, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { gitGateHookFiles } from "../../lib/git-gate-hooks.ts";
import { run, type RunResult } from "../../lib/proc.ts";
import { REPO_ROOT, startDaemon, type DaemonProcess } from "../../tests/support/daemon-process.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { cannotRunSshd, keypair, startSshd } from "../../tests/support/sshd.ts";
import { tempDir } from "../../tests/support/tmp.ts";

/** The folders a gate wrote `key` to from its environment (identities.ts). */
async function envIdentityDirs(key: string): Promise<string[]> {
  const base = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  const dirs = (await readdir(base)).filter((n) => n.startsWith("git-gate-identities-")).map((n) => join(base, n));
  const holding = await Promise.all(dirs.map((d) => readFile(join(d, "identity-0"), "utf8").then((k) => k === key, () => false)));
  return dirs.filter((_, i) => holding[i]);
}

test("git-gate fetches and pushes over SSH with an identity only it holds (from its environment, as the bundle's init hands it over, or a folder); a key the upstream does not accept, or a host key other than the pinned one, fails with the upstream named", skipWhen(await cannotRunSshd(), "git-gate over SSH"), async (t) => {
  const dir = await tempDir(t, "bb-git-gate-ssh-");
  await writeFile(join(dir, "gitconfig"), "[user]\n\tname = Test\n\temail = test@example.test\n[init]\n\tdefaultBranch = main\n");
  const gitEnv = { GIT_CONFIG_GLOBAL: join(dir, "gitconfig"), GIT_CONFIG_NOSYSTEM: "1", GIT_TERMINAL_PROMPT: "0" };
  const git = (cwd: string, args: string[], expect = [0]): Promise<RunResult> => run(["git", ...args], { cwd, env: gitEnv, expect, timeoutMs: 60_000 });

  const upstreamRoot = join(dir, "upstream");
  const bare = join(upstreamRoot, "acme/widget.git");
  await mkdir(bare, { recursive: true });
  await git(bare, ["init", "-q", "--bare"]);
  const seed = join(dir, "seed");
  await git(dir, ["clone", "-q", bare, seed]);
  await writeFile(join(seed, "README.md"), "# widget over ssh\n");
  await git(seed, ["add", "-A"]);
  await git(seed, ["commit", "-q", "-m", "initial"]);
  await git(seed, ["push", "-q", "origin", "main"]);

  const sshDir = join(dir, "ssh");
  await mkdir(sshDir, { mode: 0o700 });
  const identities = join(dir, "identities");
  await mkdir(identities, { mode: 0o700 });
  const accepted = await keypair(identities, "identity-0");
  const stranger = await keypair(identities, "identity-1"); // a key sshd has never heard of
  const port = await startSshd(t, sshDir, await readFile(accepted.pub, "utf8"), "127.0.0.1");

  const hooks = join(dir, "hooks");
  await mkdir(hooks);
  for (const [name, content] of Object.entries(gitGateHookFiles())) {
    await writeFile(join(hooks, name), content);
    await chmod(join(hooks, name), 0o755);
  }
  const sshUrl = `ssh://${userInfo().username}@127.0.0.1:${port}${upstreamRoot}`;
  const gate = async (identity: string, data: string, hostKeys: string[] | null = null, fromEnv = false): Promise<DaemonProcess> => {
    const config = join(dir, `config-${data}.json`);
    await writeFile(
      config,
      JSON.stringify({
        version: 1,
        upstreams: [{ host: "example.com", url: sshUrl, identity, hostKeys }],
        repos: ["example.com/acme/widget"],
        push: { allowedRefs: ["agent/**"], protectedBranches: ["main"], protectedPaths: [], dlp: true },
        dlp: { disabled: [], sensitive: [] },
      }),
    );
    const source = fromEnv ? ["--identities-env", "BB_GIT_IDENTITY_"] : ["--identities", identities];
    const env = fromEnv ? { ...gitEnv, BB_GIT_IDENTITY_0: await readFile(join(identities, identity), "utf8") } : gitEnv;
    const d = await startDaemon(join(REPO_ROOT, "sidecar-image/git-gate/main.ts"), ["--listen", "127.0.0.1:0", "--config", config, "--hooks", hooks, "--data", join(dir, data), ...source], env);
    t.after(() => d.stop());
    return d;
  };

  const good = await gate("identity-0", "data-good", null, true);
  // Written from its environment to a folder of its own (ssh reads a file), 0700.
  const key = await readFile(accepted.key, "utf8");
  const written = await envIdentityDirs(key);
  assert.equal(written.length, 1, written.join(", "));
  assert.equal((await stat(written[0]!)).mode & 0o777, 0o700);
  const work = join(dir, "work");
  // The agent side has no SSH at all: a failing ssh on its PATH would be used if it tried.
  await git(dir, ["clone", "-q", `git://127.0.0.1:${good.port}/example.com/acme/widget`, work]);
  assert.equal(await readFile(join(work, "README.md"), "utf8"), "# widget over ssh\n");
  await writeFile(join(work, "feature.txt"), "from the agent\n");
  await git(work, ["add", "-A"]);
  await git(work, ["commit", "-q", "-m", "agent work"]);
  const sha = (await git(work, ["rev-parse", "HEAD"])).stdout.trim();
  const pushed = await git(work, ["push", "origin", "HEAD:refs/heads/agent/over-ssh"]);
  assert.match(pushed.stderr, /git-gate: pushed refs\/heads\/agent\/over-ssh to upstream example\.com\/acme\/widget/);
  assert.equal((await git(bare, ["rev-parse", "agent/over-ssh"])).stdout.trim(), sha, "the push reached the upstream over ssh");
  assert.ok(existsSync(join(dir, "data-good", "known_hosts")), "the upstream's host key is pinned in the gate's own known_hosts");
  await good.stop();
  assert.deepEqual(await envIdentityDirs(key), [], "the gate removes its identities' folder when it stops");

  const bad = await gate("identity-1", "data-bad");
  const refused = await git(dir, ["ls-remote", `git://127.0.0.1:${bad.port}/example.com/acme/widget`], [128]);
  assert.match(refused.stderr, /git-gate: cannot fetch example\.com\/acme\/widget from its upstream/);
  assert.ok(!refused.stderr.includes(stranger.key), "the identity's path is not shown to the agent");

  // Pinned (host_key in the bottle): the upstream's real key works, without trust on first use.
  const realHostKey = (await readFile(join(sshDir, "host_key.pub"), "utf8")).trim();
  const pinned = await gate("identity-0", "data-pinned", [realHostKey]);
  const listed = await git(dir, ["ls-remote", `git://127.0.0.1:${pinned.port}/example.com/acme/widget`]);
  assert.match(listed.stdout, new RegExp(`${sha}\trefs/heads/agent/over-ssh`));
  assert.ok(!existsSync(join(dir, "data-pinned", "known_hosts")), "a pinned upstream learns no key on first use");
  // Pinned to another key: the real upstream's key is refused (as a man in the middle would be).
  const otherKey = (await readFile((await keypair(dir, "other_host_key")).pub, "utf8")).trim();
  const mitm = await gate("identity-0", "data-mitm", [otherKey]);
  const rejected = await git(dir, ["ls-remote", `git://127.0.0.1:${mitm.port}/example.com/acme/widget`], [128]);
  assert.match(rejected.stderr, /git-gate: cannot fetch example\.com\/acme\/widget from its upstream/);
  assert.ok(!existsSync(join(dir, "data-mitm", "repos", "example.com", "acme", "widget.git")), "nothing was fetched from an upstream with the wrong host key");
});
