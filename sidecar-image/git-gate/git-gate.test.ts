// git-gate as a real process in front of a real upstream (a bare repo reached over
// file://), driven by the real git client over git:// on 127.0.0.1. The hooks are the
// ones bb-prepare writes (lib/git-gate-hooks.ts), calling back into main.ts through tsx.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { run, type RunResult } from "../../lib/proc.ts";
import { REPO_ROOT, startDaemon, type DaemonProcess } from "../../tests/support/daemon-process.ts";
import { seedUpstream } from "./testdata/gate.ts";

const AWS_KEY = "AKIAZ7QK3MPLW2XVR4TN";
const SENSITIVE = "correct-horse-battery-staple-42";

describe("git-gate (real process, real git)", () => {
  let dir: string;
  let upstream: string;
  let work: string;
  let gate: DaemonProcess;
  let gitEnv: Record<string, string>;
  let url: (repo: string) => string;

  const git = (cwd: string, args: string[], expect = [0]): Promise<RunResult> => run(["git", ...args], { cwd, env: gitEnv, expect, timeoutMs: 30_000 });
  const upstreamRefs = async () => (await git(upstream, ["for-each-ref", "--format=%(refname) %(objectname)"])).stdout;

  async function commit(file: string, content: string, message = `change ${file}`) {
    await mkdir(join(work, file, ".."), { recursive: true });
    await writeFile(join(work, file), content);
    await git(work, ["add", "--", file]);
    await git(work, ["commit", "-q", "-m", message]);
    return (await git(work, ["rev-parse", "HEAD"])).stdout.trim();
  }

  /** Push that must be refused: stderr matches every pattern, upstream does not change. */
  async function refusedPush(args: string[], ...patterns: RegExp[]) {
    const before = await upstreamRefs();
    const r = await git(work, ["push", "origin", ...args], [1]);
    for (const p of patterns) assert.match(r.stderr, p);
    assert.equal(await upstreamRefs(), before, "upstream changed after a refused push");
    return r;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bb-git-gate-test-"));
    let hooks: string;
    ({ gitEnv, upstream, hooks } = await seedUpstream(dir));
    // The upstream's own policy, to prove a refusal there reaches the agent.
    await writeFile(
      join(upstream, "hooks/pre-receive"),
      '#!/bin/sh\nwhile read o n r; do [ "$r" = refs/heads/agent/upstream-says-no ] && { echo "upstream policy: not today" >&2; exit 1; }; done; exit 0\n',
      { mode: 0o755 },
    );
    const config = {
      version: 1,
      upstreams: [{ host: "example.com", url: `file://${join(dir, "upstream")}`, identity: null, hostKeys: null }],
      repos: ["example.com/acme/widget", "example.com/acme/missing"],
      push: { allowedRefs: ["main", "agent/**", "refs/tags/v*"], protectedBranches: ["main"], protectedPaths: [".github/**", "secrets"], dlp: true },
      dlp: { disabled: [], sensitive: [{ name: "DEPLOY_PASSWORD", slot: "BB_SENSITIVE_0" }] },
    };
    await writeFile(join(dir, "config.json"), JSON.stringify(config));
    gate = await startDaemon(
      join(REPO_ROOT, "sidecar-image/git-gate/main.ts"),
      ["--listen", "127.0.0.1:0", "--config", join(dir, "config.json"), "--hooks", hooks, "--data", join(dir, "data")],
      { ...gitEnv, BB_SENSITIVE_0: SENSITIVE },
    );
    url = (repo) => `git://127.0.0.1:${gate.port}/${repo}`;
    work = join(dir, "work");
  });

  after(async () => {
    await gate?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("clones a declared repo through the gate with the upstream's history", async () => {
    await git(dir, ["clone", "-q", url("example.com/acme/widget"), work]);
    assert.equal((await git(work, ["rev-parse", "HEAD"])).stdout, (await git(upstream, ["rev-parse", "main"])).stdout);
    assert.equal((await git(work, ["show", "HEAD:README.md"])).stdout, "# widget\n");
  });

  it("speaks protocol v2 and v0 (GIT_PROTOCOL passed to upload-pack)", async () => {
    const main = (await git(upstream, ["rev-parse", "main"])).stdout.trim();
    const v2 = await run(["git", "-c", "protocol.version=2", "ls-remote", url("example.com/acme/widget.git"), "refs/heads/main"], { env: { ...gitEnv, GIT_TRACE_PACKET: "1" } });
    assert.match(v2.stderr, /< version 2/);
    assert.equal(v2.stdout, `${main}\trefs/heads/main\n`);
    const v0 = await run(["git", "-c", "protocol.version=0", "ls-remote", url("example.com/acme/widget"), "refs/heads/main"], { env: gitEnv });
    assert.equal(v0.stdout, `${main}\trefs/heads/main\n`);
  });

  it("fetch syncs from upstream first: a commit made upstream reaches the agent", async () => {
    const seed = join(dir, "seed");
    await writeFile(join(seed, "CHANGELOG.md"), "upstream change\n");
    await git(seed, ["add", "CHANGELOG.md"]);
    await git(seed, ["commit", "-q", "-m", "upstream moves"]);
    await git(seed, ["push", "-q", "origin", "main"]);
    await git(work, ["pull", "-q", "--ff-only"]);
    assert.equal((await git(work, ["rev-parse", "origin/main"])).stdout, (await git(upstream, ["rev-parse", "main"])).stdout);
  });

  it("refuses an undeclared repo with a git ERR naming it", async () => {
    const r = await git(dir, ["ls-remote", url("example.com/acme/secret")], [128]);
    assert.match(r.stderr, /remote error: git-gate: repository example\.com\/acme\/secret is not declared for this bottle/);
    const traversal = await git(dir, ["ls-remote", url("example.com/acme/widget/../../../etc")], [128]);
    assert.match(traversal.stderr, /remote error: git-gate: repository .* is not declared/);
    const gone = await git(dir, ["ls-remote", url("example.com/acme/missing")], [128]);
    assert.match(gone.stderr, /remote error: git-gate: cannot fetch example\.com\/acme\/missing from its upstream/);
  });

  it("a push within policy reaches upstream (new agent branch, fast-forward of protected main)", async () => {
    const sha = await commit("src/feature.ts", "export const x = 1;\n");
    const r = await git(work, ["push", "origin", "HEAD:refs/heads/agent/feature-1", "HEAD:main"]);
    assert.match(r.stderr, /remote: git-gate: pushed refs\/heads\/(main, refs\/heads\/agent\/feature-1|agent\/feature-1, refs\/heads\/main) to upstream example\.com\/acme\/widget/);
    assert.equal((await git(upstream, ["rev-parse", "agent/feature-1"])).stdout.trim(), sha);
    assert.equal((await git(upstream, ["rev-parse", "main"])).stdout.trim(), sha);
  });

  it("rejects a ref outside allowedRefs", async () => {
    await refusedPush(["HEAD:refs/heads/other"], /remote: git-gate:\s+\[allowedRefs\] refs\/heads\/other: refs\/heads\/other is not an allowed ref/);
  });

  it("rejects a force-push to a protected branch", async () => {
    await git(work, ["commit", "-q", "--amend", "-m", "rewritten history"]);
    await refusedPush(["--force", "HEAD:main"], /\[protectedBranches\] refs\/heads\/main: force-push \(non-fast-forward\) to protected branch main is not allowed/);
    await git(work, ["reset", "-q", "--hard", "origin/main"]);
  });

  it("rejects deleting a protected branch", async () => {
    await refusedPush([":main"], /\[protectedBranches\] refs\/heads\/main: deleting protected branch main is not allowed/);
  });

  it("rejects a change to a protected path, naming the path", async () => {
    await commit(".github/workflows/ci.yml", "on: push\njobs: {}\n");
    await commit("secrets/deploy.txt", "nothing to see\n");
    await refusedPush(
      ["HEAD:refs/heads/agent/ci"],
      /\[protectedPaths\] refs\/heads\/agent\/ci: commit [0-9a-f]{12} changes protected path \.github\/workflows\/ci\.yml \(matches \.github\/\*\*\)/,
      /\[protectedPaths\] refs\/heads\/agent\/ci: commit [0-9a-f]{12} changes protected path secrets\/deploy\.txt \(matches secrets\)/,
    );
    await git(work, ["reset", "-q", "--hard", "origin/main"]);
  });

  it("rejects a pushed file containing an AWS key, naming the detector", async () => {
    await commit("config/app.env", `REGION=us-east-1\nAWS_ACCESS_KEY_ID=${AWS_KEY}\n`);
    const r = await refusedPush(["HEAD:refs/heads/agent/config"], /\[dlp\] refs\/heads\/agent\/config: commit [0-9a-f]{12} adds a secret to config\/app\.env: found by the aws detector/);
    assert.ok(!r.stderr.includes(AWS_KEY), "the rejection must not echo the secret");
    await git(work, ["reset", "-q", "--hard", "origin/main"]);
  });

  it("rejects a commit message carrying a sensitive env value", async () => {
    await commit("notes.md", "harmless\n", `deploy with ${SENSITIVE}`);
    await refusedPush(["HEAD:refs/heads/agent/notes"], /\[dlp\] refs\/heads\/agent\/notes: commit [0-9a-f]{12} message: secret found by the sensitive_env detector/);
    await git(work, ["reset", "-q", "--hard", "origin/main"]);
  });

  it("relays an upstream refusal and leaves the gate's refs where they were", async () => {
    await commit("docs/x.md", "x\n");
    await refusedPush(["HEAD:refs/heads/agent/upstream-says-no"], /upstream refused the push/, /upstream policy: not today/);
    const gateRefs = await git(dir, ["ls-remote", url("example.com/acme/widget"), "refs/heads/agent/upstream-says-no"]);
    assert.equal(gateRefs.stdout, "");
  });
});

describe("git-gate with an agent key (ports on host loopback)", () => {
  const key = "fedcba9876543210".repeat(3);
  let dir: string;
  let gitEnv: Record<string, string>;
  let gate: DaemonProcess;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bb-git-gate-key-"));
    let hooks: string;
    ({ gitEnv, hooks } = await seedUpstream(dir));
    const config = {
      version: 1,
      upstreams: [{ host: "example.com", url: `file://${join(dir, "upstream")}`, identity: null, hostKeys: null }],
      repos: ["example.com/acme/widget"],
      push: { allowedRefs: ["agent/**"], protectedBranches: ["main"], protectedPaths: [], dlp: true },
      dlp: { disabled: [], sensitive: [] },
    };
    await writeFile(join(dir, "config.json"), JSON.stringify(config));
    const args = ["--listen", "127.0.0.1:0", "--require-agent-key", "--config", join(dir, "config.json"), "--hooks", hooks, "--data", join(dir, "data")];
    gate = await startDaemon(join(REPO_ROOT, "sidecar-image/git-gate/main.ts"), args, { ...gitEnv, BB_AGENT_KEY: key });
  });

  after(async () => {
    await gate?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const lsRemote = (url: string) => run(["git", "ls-remote", url], { cwd: dir, env: gitEnv, expect: [0, 128], timeoutMs: 30_000 });

  it("serves a repository only under /KEY/; without it, or with another, the refusal names no key", async () => {
    const ok = await lsRemote(`git://127.0.0.1:${gate.port}/${key}/example.com/acme/widget`);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /refs\/heads\/main/);
    for (const path of ["example.com/acme/widget", `${key.slice(0, -1)}1/example.com/acme/widget`, `${key}`]) {
      const r = await lsRemote(`git://127.0.0.1:${gate.port}/${path}`);
      assert.equal(r.code, 128, path);
      assert.match(r.stderr, /git-gate: this git-gate serves only its bottle's agent, whose git URLs carry the key/, path);
      assert.ok(!r.stderr.includes(key.slice(0, 8)), r.stderr);
    }
  });

  it("does not start with a repo no upstream serves, and says so in one line that names git-gate once", async () => {
    const config = { version: 1, upstreams: [], repos: ["example.org/acme/orphan"], push: { allowedRefs: [], protectedBranches: [], protectedPaths: [], dlp: false }, dlp: { disabled: [], sensitive: [] } };
    await writeFile(join(dir, "orphan.json"), JSON.stringify(config));
    const r = await run(["node", "--import", "tsx", join(REPO_ROOT, "sidecar-image/git-gate/main.ts"), "--listen", "127.0.0.1:0", "--config", join(dir, "orphan.json"), "--data", join(dir, "data3")], { expect: [1], cwd: REPO_ROOT });
    assert.equal(r.stderr, "git-gate: error: Repo example.org/acme/orphan has no upstream for host example.org\n");
  });

  it("does not start without $BB_AGENT_KEY", async () => {
    const r = await run(["node", "--import", "tsx", join(REPO_ROOT, "sidecar-image/git-gate/main.ts"), "--listen", "127.0.0.1:0", "--require-agent-key", "--config", join(dir, "config.json"), "--data", join(dir, "data2")], {
      env: { BB_AGENT_KEY: undefined },
      expect: [1],
      cwd: REPO_ROOT,
    });
    // The daemon named once, as every error line names it.
    assert.match(r.stderr, /^git-gate: error: --require-agent-key: \$BB_AGENT_KEY is not set/m);
  });
});
