import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { run } from "../proc.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { samplePlan } from "../../tests/support/plans.ts";
import type { Plan } from "../plan/schema.ts";
import { parseSteps, provisionScript } from "./script.ts";
import { gitconfigText } from "./stage.ts";

type Ready = Plan & { bundle: NonNullable<Plan["bundle"]>; vm: NonNullable<Plan["vm"]> };

function ready(over: Partial<Plan["bottle"]> = {}): Ready {
  const p = samplePlan();
  return {
    ...p,
    bottle: { ...p.bottle, ...over },
    bundle: {
      container: "c",
      image: "i",
      networks: { internal: "n", egress: "e" }, networkIds: null,
      caCert: "/ca.pem",
      agentUrls: { proxy: "http://firewall:8888", gitGate: "git://git-gate:9418", supervise: "http://supervise:9100/mcp" },
      hostPorts: null,
      loopbackAddr: null,
      startedAt: "t",
    },
    vm: { kind: "docker", image: "a", imageId: null, name: "v", id: null, artifact: null, user: "node", home: "/home/node", env: {}, startedAt: "t" },
  };
}

const git = {
  upstreams: [{ host: "github.com", url: "ssh://git@github.com", identityFile: null, hostKeys: null }],
  repos: ["github.com/o/r"],
  push: { allowedRefs: [], protectedBranches: ["main"], protectedPaths: [], dlp: true },
};

test("gitconfig rewrites every URL form of a declared upstream to git-gate, as real git resolves it", async (t) => {
  const home = await tempDir(t);
  const plan = ready({ git, gitUser: { name: "Bot", email: null } });
  await writeFile(`${home}/.gitconfig`, gitconfigText(plan));
  const env = { HOME: home, GIT_CONFIG_NOSYSTEM: "1" };
  for (const url of ["https://github.com/o/r", "git@github.com:o/r", "ssh://git@github.com/o/r"]) {
    const r = await run(["git", "ls-remote", "--get-url", url], { env });
    assert.equal(r.stdout.trim(), "git://git-gate:9418/github.com/o/r", url);
  }
  const other = await run(["git", "ls-remote", "--get-url", "https://gitlab.com/o/r"], { env });
  assert.equal(other.stdout.trim(), "https://gitlab.com/o/r");
  assert.equal((await run(["git", "config", "--global", "user.name"], { env })).stdout.trim(), "Bot");
});

test("the provisioning script runs each step and reports a failing check with its reason", async () => {
  const { script, steps } = provisionScript(ready(), { cwd: false });
  assert.deepEqual(steps, ["unpack", "ca", "gitconfig", "supervise-mcp"]);
  assert.match(script, /BB-STEP/);
  // Run the real script in a shell where tar gets no archive: unpack must fail loudly.
  const r = await run(["sh", "-c", script], { input: "", expect: [0, 1, 2] });
  const parsed = parseSteps(r.stdout, steps);
  assert.equal(parsed[0]!.ok, false);
  assert.equal(parsed[1]!.detail, "did not run");
});

test("parseSteps treats a step that printed nothing as failed", () => {
  const r = parseSteps("BB-STEP unpack ok\nBB-STEP ca fail not in bundle\n", ["unpack", "ca", "gitconfig"]);
  assert.deepEqual(r, [
    { name: "unpack", ok: true, detail: null },
    { name: "ca", ok: false, detail: "not in bundle" },
    { name: "gitconfig", ok: false, detail: "did not run" },
  ]);
});
