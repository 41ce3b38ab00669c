// The agent image as bot-bottle uses it: built (or reused) from the pinned CLIs staged on
// the host, and able to run both CLIs as user node without npm or a network.
// The image is the real one, not a throwaway: it is a cache every later start reuses.
import assert from "node:assert/strict";
import { test } from "node:test";
import { docker } from "../docker/cmd.ts";
import { run } from "../proc.ts";
import { tsArgv } from "../supervise/testdata/ts-argv.ts";
import { LABEL } from "../docker/labels.ts";
import { ensureImage } from "./ensure.ts";
import { AGENT_CLIS } from "./versions.ts";

test("the agent image runs claude and codex at the pinned versions as node in /home/node", async () => {
  const image = await ensureImage("agent");
  assert.match(image.ref, /^bot-bottle\/agent:[0-9a-f]{16}$/);
  const script = 'id -u; id -un; echo "$HOME"; pwd; claude --version; codex --version; node --version; git --version; command -v curl ps less bash; find / -xdev -perm /6000 -type f 2>/dev/null | sed "s/^/setuid: /"';
  const r = await docker(["run", "--rm", "--network", "none", "--label", `${LABEL.test}=1`, image.ref, "bash", "-c", script], { timeoutMs: 120_000 });
  const [uid, user, home, cwd, claude, codex, node, git, ...tools] = r.stdout.trim().split("\n");
  assert.deepEqual([uid, user, home, cwd], ["1000", "node", "/home/node", "/home/node"]);
  assert.equal(claude, `${AGENT_CLIS.claude.version} (Claude Code)`);
  assert.equal(codex, `codex-cli ${AGENT_CLIS.codex.version}`);
  assert.match(node!, /^v(1[89]|[2-9]\d)\./);
  assert.match(git!, /^git version 2\./);
  assert.deepEqual(tools.filter((t) => t.startsWith("setuid: ")), [], "no setuid or setgid program for the agent to become root with");
  assert.equal(tools.length, 4, `missing tools: ${tools.join(" ")}`);
  const again = await ensureImage("agent");
  assert.deepEqual([again.ref, again.id, again.built], [image.ref, image.id, false]);
});

test("a prefetched agent image lookup is the one ensureImage uses: the image is inspected once", async () => {
  const r = await run(tsArgv("lib/images/testdata/prefetch-then-ensure.ts"), { timeoutMs: 120_000 });
  const ref = r.stdout.trim();
  assert.match(ref, /^bot-bottle\/agent:[0-9a-f]{16}$/);
  const inspects = r.stderr.split("\n").filter((l) => l.includes("run: docker image inspect") && l.includes(ref));
  assert.equal(inspects.length, 1, r.stderr);
});
