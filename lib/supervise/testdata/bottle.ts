// Test support: a prepared bottle in a temporary state root, laid out the way bb-prepare
// leaves it (plan.json, firewall policy, supervise queue), for the supervise tests.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { savePlan } from "../../plan/io.ts";
import type { BundleSection, Plan } from "../../plan/schema.ts";
import type { FirewallPolicy } from "../../sidecar-config.ts";
import { samplePlan } from "../../../tests/support/plans.ts";

export interface TestBottle {
  stateRoot: string;
  slug: string;
  plan: Plan;
  planFile: string;
  queueDir: string;
  policyFile: string;
  remove(): Promise<void>;
}

export async function makeTestBottle(opts: { slug?: string; bundle?: Partial<BundleSection> } = {}): Promise<TestBottle> {
  const stateRoot = await mkdtemp(join(tmpdir(), "bb-supervise-test-"));
  const slug = opts.slug ?? "shell-t3st";
  const dir = join(stateRoot, "bottles", slug);
  const queueDir = join(dir, "supervise", "queue");
  const policyFile = join(dir, "firewall", "policy.json");
  await mkdir(queueDir, { recursive: true });
  await mkdir(join(dir, "firewall"), { recursive: true });
  const policy: FirewallPolicy = {
    version: 1,
    slug,
    hosts: [{ host: "api.anthropic.com", tlsPassthrough: false, routed: true }],
    dlp: { disabled: [], sensitive: [] },
  };
  await writeFile(policyFile, JSON.stringify(policy, null, 2) + "\n", { mode: 0o644 });
  const base = samplePlan();
  const plan: Plan = {
    ...base,
    slug,
    stateRoot,
    files: { ...base.files, dir, plan: join(dir, "plan.json"), firewallPolicy: policyFile, superviseQueue: queueDir },
    bundle: opts.bundle
      ? {
          container: "bb-test-bundle",
          image: "bot-bottle-sidecar:test",
          networks: { internal: null, egress: "bb-test-egress" }, networkIds: null,
          caCert: join(dir, "ca.pem"),
          agentUrls: { proxy: "http://firewall:8888", gitGate: null, supervise: "http://supervise:9100/mcp" },
          hostPorts: null,
          loopbackAddr: null,
          startedAt: "2026-01-01T00:00:01.000Z",
          ...opts.bundle,
        }
      : undefined,
  };
  await savePlan(plan);
  return { stateRoot, slug, plan, planFile: plan.files.plan, queueDir, policyFile, remove: () => rm(stateRoot, { recursive: true, force: true }) };
}
