// Escape suite, bottle lifecycle (issue 4, properties 13-15), against a real Docker engine
// and the real start flow (scripts/flow.sh, what `just run` runs): several bottles at once,
// the flow SIGKILLed after each stage and the leftovers found by a plain `bb-cleanup`, and
// `bb-cleanup` leaving live bottles alone. Each flow gets its own state root, so its slug
// and its work files are easy to find, and every cleanup is scoped to that slug: other
// tests' bottles on this engine are never touched.
import assert from "node:assert/strict";
import type { Buffer } from "node:buffer";
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { bottleResources } from "../support/leftovers.ts";
import { run, start, ANY_EXIT } from "../../lib/proc.ts";
import { removeBottle, tool } from "./support/bottle.ts";
import { REPO } from "./support/env.ts";

const FLOW = join(REPO, "scripts", "flow.sh");

interface Left {
  containers: string[];
  networks: string[];
  volumes: string[];
  stateDir: boolean;
}

describe("escape suite: bottle lifecycle (docker)", () => {
  let root: string;
  /** Every state root used here, to tear down whatever a failing test leaves. */
  const roots: string[] = [];
  /** Flows started in the background; a failing test may leave one running. */
  const flows: ChildProcess[] = [];

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "bb-escape-life-"));
  });

  after(async () => {
    for (const f of flows) if (f.exitCode === null && f.signalCode === null) await signalGroup(f, "KILL");
    for (const r of roots) {
      for (const slug of await slugsIn(r)) await removeBottle(r, slug).catch(() => {});
    }
    await rm(root, { recursive: true, force: true });
  });

  /** A fresh state root for one flow: its only bottle is the flow's. */
  async function sandbox(name: string): Promise<{ state: string; env: Record<string, string> }> {
    const state = join(root, name);
    await mkdir(state, { recursive: true });
    roots.push(state);
    return { state, env: { BB_STATE_DIR: state, BB_TEST_LABEL: "1", NO_COLOR: "1" } };
  }

  /**
   * The start flow in its own process group (setsid), so that one signal reaches it and
   * every tool it runs, as a terminal signals a foreground job.
   */
  function startFlow(args: string[], env: Record<string, string>, stderr: "pipe" | "ignore" = "ignore"): ChildProcess {
    const flow = start(["setsid", FLOW, "run", "agent=shell", ...args], { env, stdio: ["ignore", "ignore", stderr] });
    flows.push(flow);
    return flow;
  }

  async function signalGroup(flow: ChildProcess, signal: "KILL" | "TERM"): Promise<void> {
    await run(["kill", "-s", signal, "--", `-${flow.pid}`], { expect: ANY_EXIT });
  }

  async function slugsIn(state: string): Promise<string[]> {
    return existsSync(join(state, "bottles")) ? await readdir(join(state, "bottles")) : [];
  }

  async function leftOf(state: string, slug: string): Promise<Left> {
    return { ...(await bottleResources(slug)), stateDir: existsSync(join(state, "bottles", slug)) };
  }
  const nothing: Left = { containers: [], networks: [], volumes: [], stateDir: false };

  it("three bottles started at once all run their command with distinct slugs and networks, and all are torn down", async () => {
    const cmd = `echo "slug=$BB_SLUG firewall=$(getent hosts firewall | cut -d' ' -f1) proxy=$(curl -s -o /dev/null -w '%{http_code}' http://nowhere.test/)"`;
    const boxes = await Promise.all(["one", "two", "three"].map((n) => sandbox(`many-${n}`)));
    const runs = await Promise.all(boxes.map((b) => run([FLOW, "run", "agent=shell", "--", "bash", "-c", cmd], { env: b.env, expect: ANY_EXIT, timeoutMs: 180_000 })));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const lines = runs.map((r) => r.stdout.trim());
    const parsed = lines.map((l) => Object.fromEntries(l.split(" ").map((kv) => kv.split("=") as [string, string])));
    assert.equal(new Set(parsed.map((p) => p.slug)).size, 3, lines.join("\n"));
    assert.equal(new Set(parsed.map((p) => p.firewall)).size, 3, lines.join("\n")); // three internal networks
    assert.deepEqual(parsed.map((p) => p.proxy), ["403", "403", "403"]); // each reached its own firewall
    for (const [i, p] of parsed.entries()) assert.deepEqual(await leftOf(boxes[i]!.state, p.slug!), nothing);
  });

  /** Start the flow in its own process group; SIGKILL the group once `stage` has happened. */
  async function killAfter(stage: "prepare" | "bundle" | "vm" | "provision"): Promise<{ state: string; slug: string; before: Left }> {
    const box = await sandbox(`kill-${stage}`);
    const flow = startFlow(["--", "sleep", "600"], box.env, "pipe");
    let stderr = "";
    flow.stderr!.on("data", (d: Buffer) => void (stderr += d.toString()));
    const exited = new Promise<void>((resolve) => flow.on("close", () => resolve()));
    const file = { prepare: "plan.json", bundle: "bundled.json", vm: "vm.json", provision: "ready.json" }[stage];
    try {
      const deadline = Date.now() + 120_000;
      for (;;) {
        // Once prepared, the flow keeps its files in <state>/bottles/<slug>/flow, each tool's
        // stdout redirected into its own file: non-empty means the tool is done.
        const [slug] = await slugsIn(box.state);
        if (slug && ((await stat(join(box.state, "bottles", slug, "flow", file)).catch(() => null))?.size ?? 0) > 0) break;
        if (flow.exitCode !== null || Date.now() > deadline) throw new Error(`flow never got past ${stage}:\n${stderr}`);
        await sleep(50);
      }
      if (stage === "provision") {
        // Wait until the command runs in the agent.
        const [slug] = await slugsIn(box.state);
        while (!(await run(["docker", "top", `bb-${slug}-agent`], { expect: ANY_EXIT })).stdout.includes("sleep 600")) {
          if (flow.exitCode !== null || Date.now() > deadline) throw new Error(`the command never started:\n${stderr}`);
          await sleep(100);
        }
      }
    } finally {
      await signalGroup(flow, "KILL");
      await exited;
    }
    const [slug] = await slugsIn(box.state);
    assert.ok(slug, `no bottle was prepared:\n${stderr}`);
    // A docker request the killed CLI had sent may still complete: wait for a stable picture.
    let before = await leftOf(box.state, slug);
    for (;;) {
      await sleep(750);
      const again = await leftOf(box.state, slug);
      if (JSON.stringify(again) === JSON.stringify(before)) break;
      before = again;
    }
    return { state: box.state, slug, before };
  }

  for (const stage of ["prepare", "bundle", "vm", "provision"] as const) {
    it(`a start flow SIGKILLed after ${stage} leaves nothing that bb-cleanup does not remove`, async () => {
      const killed = await killAfter(stage);
      assert.ok(killed.before.stateDir, "the state dir should exist after the kill");
      if (stage !== "prepare") assert.ok(killed.before.containers.length > 0, JSON.stringify(killed.before));
      const owner = JSON.parse(await readFile(join(killed.state, "bottles", killed.slug, "owner.json"), "utf8")) as { pid: number };
      assert.ok(owner.pid > 0);
      const r = await tool("bb-cleanup", ["--yes", "--grace", "0", "--filter-label", "bot-bottle.test=1", "--filter-label", `bot-bottle.slug=${killed.slug}`, "--state-dir", killed.state]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await leftOf(killed.state, killed.slug), nothing, `${JSON.stringify(killed.before)} ->\n${r.stderr}`);
    });
  }

  it("bb-cleanup --yes leaves live bottles running and usable: one whose flow is running, one a finished flow kept, one built by hand", async () => {
    const box = await sandbox("live-flow");
    const flow = startFlow(["--", "sleep", "600"], box.env);
    const flowExit = new Promise<number | null>((resolve) => flow.on("close", (code) => resolve(code)));
    const keptBox = await sandbox("live-kept");
    const keeping = run([FLOW, "start", "agent=shell", "yes=true", "keep=true"], { env: keptBox.env, expect: ANY_EXIT, timeoutMs: 180_000 });
    const hand = await sandbox("live-hand");
    const prepared = await tool("bb-prepare", ["shell", "--state-dir", hand.state]);
    assert.equal(prepared.code, 0, prepared.stderr);
    const bundled = await tool("bb-bundle", [], { input: prepared.stdout });
    assert.equal(bundled.code, 0, bundled.stderr);
    const vm = await tool("bb-vm", [], { input: bundled.stdout });
    assert.equal(vm.code, 0, vm.stderr);
    const ready = await tool("bb-provision", [], { input: vm.stdout });
    assert.equal(ready.code, 0, ready.stderr);
    const handSlug = (JSON.parse(ready.stdout) as { slug: string }).slug;

    // The flow's bottle: wait until its command runs.
    let flowSlug = "";
    for (let i = 0; i < 600 && !flowSlug; i++) {
      const [s] = await slugsIn(box.state);
      if (s && (await run(["docker", "top", `bb-${s}-agent`], { expect: ANY_EXIT })).stdout.includes("sleep 600")) flowSlug = s;
      else await sleep(100);
    }
    assert.ok(flowSlug, "the flow's bottle never started its command");

    const kept = await keeping;
    assert.equal(kept.code, 0, kept.stderr);
    const [keptSlug] = await slugsIn(keptBox.state);

    const live = [
      { state: box.state, slug: flowSlug },
      { state: keptBox.state, slug: keptSlug! },
      { state: hand.state, slug: handSlug },
    ];
    const before = await Promise.all(live.map((b) => leftOf(b.state, b.slug)));
    for (const b of live) {
      const r = await tool("bb-cleanup", ["--yes", "--grace", "0", "--filter-label", "bot-bottle.test=1", "--filter-label", `bot-bottle.slug=${b.slug}`, "--state-dir", b.state]);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.deepEqual(await Promise.all(live.map((b) => leftOf(b.state, b.slug))), before);
    for (const b of live) {
      const r = await tool("bb-vm", ["exec", "--slug", b.slug, "--state-dir", b.state, "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://nowhere.test/"]);
      assert.equal(r.stdout, "403", `${b.slug}: ${r.stderr}`);
    }

    // Interrupted, the flow tears its own bottle down.
    await signalGroup(flow, "TERM");
    assert.equal(await flowExit, 143);
    assert.deepEqual(await leftOf(box.state, flowSlug), nothing);
    for (const b of live.slice(1)) {
      await removeBottle(b.state, b.slug);
      assert.deepEqual(await leftOf(b.state, b.slug), nothing);
    }
  });
});
