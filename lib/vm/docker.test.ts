import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import { AGENT } from "../layout.ts";
import type { Plan } from "../plan/schema.ts";
import { run } from "../proc.ts";
import { samplePlan } from "../../tests/support/plans.ts";
import { agentExecArgv } from "./docker.ts";
import { rootExec } from "./env.ts";

test("agentExecArgv() runs as the agent user with its HOME; argv passes through sh's exec untouched", () => {
  const argv = agentExecArgv("c0ffee", ["A=1", "echo", "$HOME"], { interactive: true, tty: true, workdir: "/w" });
  assert.deepEqual(argv, [
    "docker", "exec", "--interactive", "--tty", "-e", `HOME=${AGENT.home}`, "--user", AGENT.user, "--workdir", "/w",
    "c0ffee", "sh", "-c", 'exec "$@"', "sh", "A=1", "echo", "$HOME",
  ]);
});

test("agentExecArgv() as root: the image's PATH and root's HOME, the loader's names emptied, every declared name dropped, bot-bottle's own kept", () => {
  const base = samplePlan();
  const plan: Plan = {
    ...base,
    agent: { ...base.agent, env: { NODE_OPTIONS: "--require /home/node/x.js" } },
    bottle: { ...base.bottle, env: { LANG: "C.UTF-8", TAR_OPTIONS: "--to-command=x", HTTPS_PROXY: "http://mine" }, egress: [{ host: "api.test", auth: "bearer", header: null, tokenEnv: "T", slot: "EGRESS_TOKEN_0", agentEnv: "BASH_ENV", placeholder: "bb-placeholder-egress-token-0" }] },
    bundle: { container: "b", image: "i", networks: { egress: "e", internal: "n" }, networkIds: null, caCert: "/ca.pem", agentUrls: { proxy: "http://firewall:3128", gitGate: null, supervise: null }, hostPorts: null, loopbackAddr: null, startedAt: base.createdAt },
  };
  assert.deepEqual(agentExecArgv("c0ffee", ["id"], { root: rootExec(plan) }), [
    "docker", "exec", "-e", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "-e", "HOME=/root", "-e", "LD_PRELOAD=", "-e", "LD_LIBRARY_PATH=", "-e", "LD_AUDIT=", "--user", "0",
    "c0ffee", "/usr/bin/env", "-u", "LANG", "-u", "TAR_OPTIONS", "-u", "NODE_OPTIONS", "-u", "BASH_ENV", "USER=root", "LOGNAME=root", "/bin/sh", "-c", 'exec "$@"', "sh", "id",
  ], "HTTPS_PROXY is bot-bottle's in the agent (agentEnv), so root keeps it");
});

test("rootExec(): the wrapped command, run for real, sees none of the declared names and keeps the rest", async () => {
  const plan: Plan = { ...samplePlan(), bottle: { ...samplePlan().bottle, env: { LANG: "C.UTF-8", TAR_OPTIONS: "--to-command=x" } } };
  const root = rootExec(plan);
  // The container's environment as docker hands it to the exec: its own, then -e on top.
  const env = { ...process.env, LANG: "C.UTF-8", TAR_OPTIONS: "--to-command=x", KEPT: "1", ...root.env };
  const r = await run(root.wrap(["sh", "-c", "env"]), { env });
  assert.doesNotMatch(r.stdout, /^(LANG|TAR_OPTIONS)=/m);
  assert.match(r.stdout, /^KEPT=1$/m);
  assert.match(r.stdout, /^USER=root$/m);
});
