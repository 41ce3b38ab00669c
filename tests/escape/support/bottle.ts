// A real bottle, built the way a user builds one by hand: bb-prepare | bb-bundle | bb-vm |
// bb-provision (bin/ tools, each its own process), with everything labelled
// bot-bottle.test=1, and torn down with the real `bb-cleanup --slug`.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as docker from "../../../lib/docker/index.ts";
import { names } from "../../../lib/layout.ts";
import type { Plan } from "../../../lib/plan/schema.ts";
import { run, type RunResult, ANY_EXIT } from "../../../lib/proc.ts";
import { agentContainer, execCaptured } from "../../../lib/vm/docker.ts";
import { rootExec } from "../../../lib/vm/env.ts";
import { ESCAPE_BOTTLES, REPO } from "./env.ts";

type Ready = Plan & { bundle: NonNullable<Plan["bundle"]>; vm: NonNullable<Plan["vm"]> };


/** Run bin/<tool> (dist bundle, or the source with BB_FROM_SOURCE=1); never throws on its exit code. */
export function tool(name: string, args: string[], opts: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run([join(REPO, "bin", name), ...args], {
    expect: ANY_EXIT,
    env: { BB_TEST_LABEL: "1", NO_COLOR: "1", ...opts.env },
    input: opts.input,
    timeoutMs: opts.timeoutMs ?? 180_000,
  });
}

/** Run a command in the bottle's agent to its end, capturing its output; as root (rootExec) with `root`. */
async function execCapture(plan: Ready, argv: string[], o: { input?: string; root?: boolean } = {}): Promise<RunResult> {
  return execCaptured(await agentContainer(plan), argv, { input: o.input, root: o.root ? rootExec(plan) : undefined });
}

async function mustTool(name: string, args: string[], opts: { env?: Record<string, string> } = {}): Promise<string> {
  const r = await tool(name, args, opts);
  if (r.code !== 0) throw new Error(`${name} ${args.join(" ")} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}

interface BottleOptions {
  stateRoot: string;
  agent?: string;
  manifestDir?: string;
  upstreamCa?: string;
  /** Host environment of bb-bundle: where the real token and sensitive values come from. */
  hostEnv?: Record<string, string>;
  /** bb-vm --dns (a function when the address is known only after bb-bundle). */
  dns?: string[] | (() => string[]);
  /** After bb-bundle, before bb-vm: attach the fake internet to the egress network. */
  afterBundle?: (b: { slug: string; egressNet: string; internalNet: string }) => Promise<void>;
}

export interface Bottle {
  slug: string;
  stateRoot: string;
  /** The provisioned plan (what `bb-vm exec --plan` and `bb-supervise --plan` read). */
  planFile: string;
  plan: Ready;
  internalNet: string;
  egressNet: string;
  bundle: string;
  agent: string;
  /** argv in the agent as user node (or root), the way `bb-vm exec` runs it. */
  exec(argv: string[], opts?: { input?: string; root?: boolean }): Promise<RunResult>;
  /** bash -c SCRIPT [ARG...] in the agent. */
  sh(script: string, opts?: { input?: string; root?: boolean; args?: string[] }): Promise<RunResult>;
  remove(): Promise<void>;
}

export async function startBottle(opts: BottleOptions): Promise<Bottle> {
  const agent = opts.agent ?? "escape";
  const prepared = await mustTool("bb-prepare", [agent, "--manifest-dir", opts.manifestDir ?? ESCAPE_BOTTLES, "--state-dir", opts.stateRoot]);
  const slug = (JSON.parse(prepared) as Plan).slug;
  const file = (step: string) => join(opts.stateRoot, `${slug}.${step}.json`);
  const remove = () => removeBottle(opts.stateRoot, slug);
  try {
    await writeFile(file("prepared"), prepared);
    const bundleArgs = ["--plan", file("prepared"), ...(opts.upstreamCa ? ["--upstream-ca", opts.upstreamCa] : [])];
    await writeFile(file("bundled"), await mustTool("bb-bundle", bundleArgs, { env: opts.hostEnv }));
    await opts.afterBundle?.({ slug, egressNet: names.egressNet(slug), internalNet: names.internalNet(slug) });
    const dns = (typeof opts.dns === "function" ? opts.dns() : (opts.dns ?? [])).flatMap((ip) => ["--dns", ip]);
    await writeFile(file("vm"), await mustTool("bb-vm", [...dns, "--plan", file("bundled")]));
    const ready = await mustTool("bb-provision", ["--plan", file("vm")]);
    await writeFile(file("ready"), ready);
    const plan = JSON.parse(ready) as Ready;
    return {
      slug,
      stateRoot: opts.stateRoot,
      planFile: file("ready"),
      plan,
      internalNet: names.internalNet(slug),
      egressNet: names.egressNet(slug),
      bundle: names.bundle(slug),
      agent: names.agent(slug),
      exec: (argv, o = {}) => execCapture(plan, argv, o),
      sh: (script, o = {}) => execCapture(plan, ["bash", "-c", script, "bash", ...(o.args ?? [])], { input: o.input, root: o.root }),
      remove,
    };
  } catch (e) {
    await remove().catch(() => {});
    throw e;
  }
}

/** bb-cleanup --slug, then make sure: nothing of the slug may outlive the test. */
export async function removeBottle(stateRoot: string, slug: string): Promise<void> {
  const r = await tool("bb-cleanup", ["--slug", slug, "--yes", "--quiet", "--state-dir", stateRoot]);
  const filter = { "bot-bottle.slug": slug };
  for (const c of await docker.listContainers(filter)) await docker.removeContainer(c.id);
  for (const n of await docker.listNetworks(filter)) await docker.removeNetwork(n.id).catch(() => {});
  for (const v of await docker.listVolumes(filter)) await docker.removeVolume(v.name).catch(() => {});
  if (r.code !== 0) throw new Error(`bb-cleanup --slug ${slug} exited ${r.code}:\n${r.stderr}`);
}

/** Bottles of one test file, removed together (each even when another fails). */
export async function removeAll(bottles: (Bottle | undefined)[]): Promise<void> {
  const results = await Promise.allSettled(bottles.filter((b): b is Bottle => b !== undefined).map((b) => b.remove()));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed.length) throw new Error(failed.map((f) => String(f.reason)).join("\n"));
}
