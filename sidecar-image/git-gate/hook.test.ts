// preReceive() in-process against real repos: a gate mirror and a file:// upstream.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { createLogger } from "../../lib/log.ts";
import { run } from "../../lib/proc.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { preReceive } from "./hook.ts";
import { HOOK_ENV } from "./server.ts";

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

  const config = join(dir, "config.json");
  await writeFile(
    config,
    JSON.stringify({
      version: 1,
      upstreams: [{ host: "example.com", url: `file://${join(dir, "up")}`, identity: null, hostKeys: null }],
      repos: ["example.com/acme/widget"],
      push: { allowedRefs: [], protectedBranches: ["main"], protectedPaths: [], dlp: true },
      dlp: { disabled: [], sensitive: [] },
    }),
  );
  const lines: string[] = [];
  const code = await preReceive({
    input: `${m0} ${agent} refs/heads/main\n`,
    env: { ...env, [HOOK_ENV.config]: config, [HOOK_ENV.repo]: "example.com/acme/widget", [HOOK_ENV.data]: join(dir, "data") },
    cwd: gate,
    out: createLogger({ level: "info", write: (l) => void lines.push(l) }),
  });
  assert.equal(code, 1, lines.join(""));
  assert.match(lines.join(""), /upstream refused the push to example\.com\/acme\/widget/);
  assert.match(lines.join(""), /stale info/);
  assert.equal(await git(upstream, "rev-parse", "main"), moved, "upstream kept its own main");
});
