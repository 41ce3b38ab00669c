// preReceive() in-process against real repos: a gate mirror and a file:// upstream, or an
// HTTP upstream that accepts connections and never answers.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import net from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { isBbError } from "../../lib/errors.ts";
import { createLogger } from "../../lib/log.ts";
import { run } from "../../lib/proc.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { preReceive } from "./hook.ts";
import { HOOK_ENV } from "./server.ts";

/** The environment git-gate gives the hook: a config with one upstream at `url`. */
async function hookEnv(dir: string, url: string): Promise<Record<string, string>> {
  const config = join(dir, "config.json");
  await writeFile(
    config,
    JSON.stringify({
      version: 1,
      upstreams: [{ host: "example.com", url, identity: null, hostKeys: null }],
      repos: ["example.com/acme/widget"],
      push: { allowedRefs: [], protectedBranches: ["main"], protectedPaths: [], dlp: true },
      dlp: { disabled: [], sensitive: [] },
    }),
  );
  return { [HOOK_ENV.config]: config, [HOOK_ENV.repo]: "example.com/acme/widget", [HOOK_ENV.data]: join(dir, "data") };
}

test("forwarding holds upstream to the old value the policy judged: a gate behind upstream cannot overwrite where upstream moved", async (t) => {
  const dir = await tempDir(t, "bb-git-gate-hook-");
  await writeFile(join(dir, "gitconfig"), "[user]\n\tname = T\n\temail = t@example.test\n[init]\n\tdefaultBranch = main\n");
  const env = { GIT_CONFIG_GLOBAL: join(dir, "gitconfig"), GIT_CONFIG_NOSYSTEM: "1" };
  const git = async (cwd: string, ...args: string[]) => (await run(["git", ...args], { cwd, env })).stdout.trim();
  const upstream = join(dir, "up/acme/widget.git");
  await run(["git", "init", "-q", "--bare", upstream], { env });
  await run(["git", "clone", "-q", upstream, join(dir, "w")], { env });
  const w = join(dir, "w");
  await git(w, "commit", "-q", "--allow-empty", "-m", "m0");
  await git(w, "push", "-q", "origin", "main");
  const m0 = await git(w, "rev-parse", "HEAD");

  const gate = join(dir, "gate.git");
  await run(["git", "clone", "-q", "--mirror", upstream, gate], { env });
  // The agent's fast-forward of main, as the gate sees it (its objects are in the gate).
  await git(w, "commit", "-q", "--allow-empty", "-m", "agent");
  const agent = await git(w, "rev-parse", "HEAD");
  await git(w, "push", "-q", gate, "HEAD:refs/heads/agent/a");
  // Meanwhile upstream main moved somewhere the gate has not fetched.
  await git(w, "reset", "-q", "--hard", m0);
  await git(w, "commit", "-q", "--allow-empty", "-m", "someone else");
  await git(w, "push", "-q", "origin", "HEAD:main");
  const moved = await git(upstream, "rev-parse", "main");

  const lines: string[] = [];
  const code = await preReceive({
    input: `${m0} ${agent} refs/heads/main\n`,
    env: { ...env, ...(await hookEnv(dir, `file://${join(dir, "up")}`)) },
    cwd: gate,
    out: createLogger({ level: "info", write: (l) => void lines.push(l) }),
  });
  assert.equal(code, 1, lines.join(""));
  assert.match(lines.join(""), /upstream refused the push to example\.com\/acme\/widget/);
  assert.match(lines.join(""), /stale info/);
  assert.equal(await git(upstream, "rev-parse", "main"), moved, "upstream kept its own main");
});

test("an upstream that never answers fails the push after the forwarding timeout, naming the upstream, instead of hanging it", async (t) => {
  const dir = await tempDir(t, "bb-git-gate-hook-");
  const env = { GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1" };
  const held: net.Socket[] = [];
  const silent = net.createServer((s) => void held.push(s)); // accepts, reads nothing, answers nothing
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  t.after(() => {
    for (const s of held) s.destroy();
    silent.close();
  });
  const gate = join(dir, "gate.git");
  await run(["git", "init", "-q", "--bare", gate], { env });
  const w = join(dir, "w");
  await run(["git", "init", "-q", w], { env });
  await run(["git", "-c", "user.name=T", "-c", "user.email=t@example.test", "commit", "-q", "--allow-empty", "-m", "agent"], { cwd: w, env });
  const agent = (await run(["git", "rev-parse", "HEAD"], { cwd: w, env })).stdout.trim();
  await run(["git", "push", "-q", gate, "HEAD:refs/heads/objects-only"], { cwd: w, env }); // the pushed objects, in the gate

  const port = (silent.address() as net.AddressInfo).port;
  const started = Date.now();
  const lines: string[] = [];
  await assert.rejects(
    preReceive({
      input: `${"0".repeat(40)} ${agent} refs/heads/agent/a\n`,
      env: { ...env, ...(await hookEnv(dir, `http://127.0.0.1:${port}`)) },
      cwd: gate,
      out: createLogger({ level: "info", write: (l) => void lines.push(l) }),
      forwardTimeoutMs: 1500,
    }),
    (e) => isBbError(e) && e.code === "TIMEOUT" && /Cannot forward the push to upstream example\.com\/acme\/widget/.test(e.message),
  ).catch((e) => assert.fail(`${e.message}; the hook said: ${lines.join("")}`));
  assert.ok(held.length > 0, "git never reached the fake upstream");
  assert.ok(Date.now() - started < 10_000, "the hook returned long after its timeout");
});
