// A small valid plan for tests that need one without running bb-prepare.
import { PLAN_VERSION, type Plan } from "../../lib/plan/schema.ts";

export function samplePlan(): Plan {
  return {
    version: PLAN_VERSION,
    slug: "shell-ab12",
    createdAt: "2026-11-23T00:00:00.000Z",
    backend: "docker",
    manifestDir: "/m",
    stateRoot: "/s",
    cwd: null,
    agent: { name: "shell", file: "/m/agents/shell.md", provider: "shell", bottle: "shell", skills: [], env: {}, forwardHostCredentials: false, hasPrompt: false },
    bottle: {
      name: "shell",
      file: "/m/shell.md",
      chain: ["shell", "base"],
      env: { LANG: "C.UTF-8" },
      git: null,
      gitUser: null,
      egress: [],
      allowHosts: [],
      sensitiveEnv: [],
      supervise: true,
      dlpDisable: [],
      limits: { memoryMiB: null, cpus: null },
    },
    services: ["firewall", "supervise"],
    files: {
      dir: "/s/bottles/shell-ab12",
      plan: "/s/bottles/shell-ab12/plan.json",
      firewallPolicy: "/s/bottles/shell-ab12/firewall/policy.json",
      egressRoutes: null,
      gitGateConfig: null,
      gitGateHooks: null,
      superviseQueue: "/s/bottles/shell-ab12/supervise/queue",
      prompt: null,
    },
  };
}
