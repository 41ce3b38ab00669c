// git-gate against an upstream reached over SSH, the way a real bottle reaches GitHub: a
// real sshd on 127.0.0.1 (Debian's openssh-server) that accepts one key, git-gate holding
// that key as the upstream's identity, and the agent side speaking git:// to the gate with
// no key at all. Skipped, saying why, where sshd is not installed (.ci/run installs it).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import net from "node:net";
import { gitGateHookFiles } from "../../lib/git-gate-hooks.ts";
import { ANY_EXIT, run, start, type RunResult } from "../../lib/proc.ts";
import { REPO_ROOT, signalPid, startDaemon, type DaemonProcess } from "../../tests/support/daemon-process.ts";
import { freePort } from "../../tests/support/ports.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { tempDir } from "../../tests/support/tmp.ts";

const SSHD = "/usr/sbin/sshd";

async function keypair(dir: string, name: string): Promise<{ key: string; pub: string }> {
  const key = join(dir, name);
  await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key]);
  return { key, pub: `${key}.pub` };
}

/** sshd on 127.0.0.1:port as this user, accepting only `authorizedKey`; stopped with the test. */
async function startSshd(t: TestContext, dir: string, authorizedKey: string): Promise<number> {
  const port = await freePort();
  const host = await keypair(dir, "host_key");
  await writeFile(join(dir, "authorized_keys"), authorizedKey);
  const config = join(dir, "sshd_config");
  await writeFile(
    config,
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${host.key}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "PidFile none",
      "StrictModes no",
      "UsePAM no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PubkeyAuthentication yes",
      "PermitRootLogin prohibit-password",
      "",
    ].join("\n"),
  );
  const sshd = start([SSHD, "-D", "-e", "-f", config], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  sshd.stderr!.on("data", (b: Buffer) => (log += b.toString()));
  t.after(() => signalPid(sshd, "SIGTERM"));
  for (let i = 0; i < 100; i++) {
    if (sshd.exitCode !== null) throw new Error(`sshd exited ${sshd.exitCode}: ${log}`);
    const up = await new Promise<boolean>((r) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        r(true);
      }).once("error", () => r(false));
    });
    if (up) return port;
    await sleep(50);
  }
  throw new Error(`sshd did not listen on ${port}: ${log}`);
}

/** Why this machine cannot run the test, or null. */
async function cannotRun(): Promise<string | null> {
  if (!existsSync(SSHD)) return `${SSHD} is not installed (Debian: apt-get install openssh-server)`;
  // sshd refuses to start without its privilege separation directory when run as root.
  if (userInfo().uid === 0 && !existsSync("/run/sshd")) {
    const r = await run(["mkdir", "-p", "-m", "0755", "/run/sshd"], { expect: ANY_EXIT });
    if (r.code !== 0) return `cannot create /run/sshd: ${r.stderr.trim()}`;
  }
  return null;
}

test("git-gate fetches and pushes over SSH with an identity only it holds; a key the upstream does not accept, or a host key other than the pinned one, fails with the upstream named", skipWhen(await cannotRun(), "git-gate over SSH"), async (t) => {
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
  const port = await startSshd(t, sshDir, await readFile(accepted.pub, "utf8"));

  const hooks = join(dir, "hooks");
  await mkdir(hooks);
  for (const [name, content] of Object.entries(gitGateHookFiles())) {
    await writeFile(join(hooks, name), content);
    await chmod(join(hooks, name), 0o755);
  }
  const sshUrl = `ssh://${userInfo().username}@127.0.0.1:${port}${upstreamRoot}`;
  const gate = async (identity: string, data: string, hostKeys: string[] | null = null): Promise<DaemonProcess> => {
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
    const d = await startDaemon(join(REPO_ROOT, "sidecar-image/git-gate/main.ts"), ["--listen", "127.0.0.1:0", "--config", config, "--hooks", hooks, "--data", join(dir, data), "--identities", identities], gitEnv);
    t.after(() => d.stop());
    return d;
  };

  const good = await gate("identity-0", "data-good");
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
