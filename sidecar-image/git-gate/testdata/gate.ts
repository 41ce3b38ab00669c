// Test support: git-gate as a real process in front of a real upstream (a bare repo over
// file://), with the hooks bb-prepare writes, a seeded history and an agent-side clone.
// The push policy is the caller's; the seed holds README.md and .github/workflows/ci.yml.
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { PushPolicy } from "../../../lib/plan/schema.ts";
import { gitGateHookFiles } from "../../../lib/git-gate-hooks.ts";
import { run, type RunResult } from "../../../lib/proc.ts";
import { serveV0Upstream, type V0Upstream } from "./v0-upstream.ts";
import { REPO_ROOT, startDaemon, type DaemonProcess } from "../../../tests/support/daemon-process.ts";

export const REPO = "example.com/acme/widget";

export interface GateFixture {
  dir: string;
  /** The bare upstream repo. */
  upstream: string;
  /** The agent's clone of REPO through the gate (origin = the gate). */
  work: string;
  gate: DaemonProcess;
  url(repo: string): string;
  git(cwd: string, args: string[], expect?: number[], input?: string): Promise<RunResult>;
  /** "<ref> <sha>" lines of every upstream ref. */
  upstreamRefs(): Promise<string>;
  /** Write `content` to `file` in the clone, commit it, return the commit. */
  commit(file: string, content: string | Uint8Array, message?: string): Promise<string>;
  stop(): Promise<void>;
}

type Git = (cwd: string, args: string[], expect?: number[], input?: string) => Promise<RunResult>;

/**
 * In `dir`: a git config and the env that uses it, the bare upstream
 * upstream/acme/widget.git seeded with README.md and .github/workflows/ci.yml on main,
 * and the hooks bb-prepare writes, in hooks/.
 */
export async function seedUpstream(dir: string): Promise<{ gitEnv: Record<string, string>; git: Git; upstream: string; hooks: string }> {
  await writeFile(join(dir, "gitconfig"), "[user]\n\tname = Test\n\temail = test@example.test\n[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n");
  const gitEnv = { GIT_CONFIG_GLOBAL: join(dir, "gitconfig"), GIT_CONFIG_NOSYSTEM: "1", GIT_TERMINAL_PROMPT: "0" };
  const git: Git = (cwd, args, expect = [0], input) => run(["git", ...args], { cwd, env: gitEnv, expect, input, timeoutMs: 60_000 });

  const upstream = join(dir, "upstream/acme/widget.git");
  await mkdir(upstream, { recursive: true });
  await git(upstream, ["init", "-q", "--bare"]);
  const seed = join(dir, "seed");
  await git(dir, ["clone", "-q", upstream, seed]);
  await mkdir(join(seed, ".github/workflows"), { recursive: true });
  await writeFile(join(seed, "README.md"), "# widget\n");
  await writeFile(join(seed, ".github/workflows/ci.yml"), "on: push\n");
  await git(seed, ["add", "-A"]);
  await git(seed, ["commit", "-q", "-m", "initial"]);
  await git(seed, ["push", "-q", "origin", "main"]);

  const hooks = join(dir, "hooks");
  await mkdir(hooks);
  for (const [name, content] of Object.entries(gitGateHookFiles())) {
    await writeFile(join(hooks, name), content);
    await chmod(join(hooks, name), 0o755);
  }
  return { gitEnv, git, upstream, hooks };
}

/** `dlpDisabled`: detectors the bottle switched off (config dlp.disabled); `v0Upstream`:
 * the gate reaches upstream over git:// from a server that speaks only protocol v0. */
export async function startGateFixture(opts: { push: PushPolicy; sensitive?: Record<string, string>; dlpDisabled?: string[]; args?: string[]; v0Upstream?: boolean }): Promise<GateFixture> {
  const dir = await mkdtemp(join(tmpdir(), "bb-git-gate-fixture-"));
  let gate: DaemonProcess | undefined;
  let v0: V0Upstream | undefined;
  try {
    const { gitEnv, git, upstream, hooks } = await seedUpstream(dir);
    if (opts.v0Upstream) v0 = await serveV0Upstream(join(dir, "upstream"), gitEnv);
    const slots = Object.keys(opts.sensitive ?? {});
    const config = {
      version: 1,
      upstreams: [{ host: "example.com", url: v0?.url ?? `file://${join(dir, "upstream")}`, identity: null, hostKeys: null }],
      repos: [REPO],
      push: opts.push,
      dlp: { disabled: opts.dlpDisabled ?? [], sensitive: slots.map((name, i) => ({ name, slot: `BB_SENSITIVE_${i}` })) },
    };
    await writeFile(join(dir, "config.json"), JSON.stringify(config));
    const sensitiveEnv = Object.fromEntries(slots.map((name, i) => [`BB_SENSITIVE_${i}`, opts.sensitive![name]!]));
    gate = await startDaemon(
      join(REPO_ROOT, "sidecar-image/git-gate/main.ts"),
      ["--listen", "127.0.0.1:0", "--config", join(dir, "config.json"), "--hooks", hooks, "--data", join(dir, "data"), ...(opts.args ?? [])],
      { ...gitEnv, ...sensitiveEnv },
    );
    const started = gate;
    const url = (repo: string) => `git://127.0.0.1:${started.port}/${repo}`;
    const work = join(dir, "work");
    await git(dir, ["clone", "-q", url(REPO), work]);

    return {
      dir,
      upstream,
      work,
      gate: started,
      url,
      git,
      upstreamRefs: async () => (await git(upstream, ["for-each-ref", "--format=%(refname) %(objectname)"])).stdout,
      async commit(file, content, message = `change ${file}`) {
        await mkdir(dirname(join(work, file)), { recursive: true });
        await writeFile(join(work, file), content);
        await git(work, ["add", "--", file]);
        await git(work, ["commit", "-q", "-m", message]);
        return (await git(work, ["rev-parse", "HEAD"])).stdout.trim();
      },
      async stop() {
        await started.stop();
        await v0?.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await gate?.stop();
    await v0?.stop();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/** A push from the fixture's clone that must be refused: stderr matches every pattern, upstream does not change. */
export async function refusedPushTo(f: GateFixture, args: string[], ...patterns: RegExp[]) {
  const before = await f.upstreamRefs();
  const r = await f.git(f.work, ["push", "origin", ...args], [1]);
  for (const p of patterns) assert.match(r.stderr, p);
  assert.equal(await f.upstreamRefs(), before, "upstream changed after a refused push");
  return r;
}

/** A maintainer's commit on `branch`, pushed to upstream itself (not through the gate), which the gate's mirror then learns. */
export async function publishUpstream(f: GateFixture, branch: string, file: string, content: string) {
  await f.git(f.work, ["checkout", "-q", "-B", "maint", `origin/${branch}`]);
  const sha = await f.commit(file, content, `maintainer: ${file}`);
  await f.git(f.work, ["push", "-q", f.upstream, `HEAD:refs/heads/${branch}`]);
  await f.git(f.work, ["checkout", "-q", "--detach", "origin/main"]);
  await f.git(f.work, ["branch", "-q", "-D", "maint"]);
  await f.git(f.work, ["fetch", "-q", "origin"]);
  return sha;
}

/**
 * `branch` made through the gate at origin/main (`base`), hardened upstream by a maintainer's
 * change to .github/workflows/ci.yml (`hardened`), then deleted through the gate: what a
 * create of it is judged from.
 */
export async function deletedAfterHardening(f: GateFixture, branch: string): Promise<{ base: string; hardened: string }> {
  const base = (await f.git(f.work, ["rev-parse", "origin/main"])).stdout.trim();
  await f.git(f.work, ["push", "-q", "origin", `${base}:refs/heads/${branch}`]);
  const hardened = await publishUpstream(f, branch, ".github/workflows/ci.yml", `on: push\njobs: {${branch.replace(/\W/g, "-")}: {}}\n`);
  await f.git(f.work, ["push", "-q", "origin", `:refs/heads/${branch}`]);
  return { base, hardened };
}
