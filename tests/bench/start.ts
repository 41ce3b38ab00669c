// `just bench start`: how long a bottle takes to start, run `true` and tear down (warm
// images), stage by stage, against a bare `docker run --rm <agent image> true` measured in
// the same run, and against the engine floor (the docker work the design needs, issued
// directly: lib/engine-floor.ts); plus the bundle's idle memory. Reports, never fails on a
// missed target.
//
//   just bench start [--runs N] [--json]
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Command, writeStdout } from "../../lib/cli.ts";
import { exitTableText } from "../../lib/errors.ts";
import { runsFlag } from "./lib/flags.ts";
import { ensureImage } from "../../lib/images/mod.ts";
import { run } from "../../lib/proc.ts";
import { engineFloorOnce } from "./lib/engine-floor.ts";

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const bin = (t: string) => join(REPO, "bin", t);

interface StartBench {
  runs: number;
  bareMs: number;
  fullMs: number;
  ratio: number;
  /** Two networks, two containers, one exec and their removal, straight to docker. */
  floorMs: number;
  /** floorMs ÷ bareMs: above the target, the design itself misses it on this engine. */
  floorRatio: number;
  stagesMs: Record<string, number>;
  bundleIdle: { totalMiB: number; perDaemonMiB: Record<string, number> };
  /** The just binary timed, and what npm's node launcher for it (node_modules/.bin/just) adds. */
  just: { binary: string; npmLauncherMs: number | null };
}

/** The native just binary rust-just ships for this platform. npm's node_modules/.bin/just is
 * a node script (execa, yargs) that finds and spawns it, costing about 0.2 s per call; a
 * just installed from cargo, apt or brew has no such launcher, so the benchmark times the
 * binary itself and reports the launcher's cost on the side. */
function justBinary(): { binary: string; launcher: string | null } {
  const launcher = join(REPO, "node_modules/.bin/just");
  const os = process.platform === "win32" ? "windows" : process.platform;
  const native = join(REPO, "node_modules", `rust-just-${os}-${process.arch}`, "bin", "just");
  return existsSync(native) ? { binary: native, launcher: existsSync(launcher) ? launcher : null } : { binary: launcher, launcher: null };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await fn();
  return [performance.now() - t0, v];
}

/** One pass through the pipe by hand, one tool after another (the bundle's readiness wait
 * lands in provision), timing each tool, and the bundle's idle memory. The flow runs the
 * same tools in one pipe, where each starts while the one before it works, so these add
 * up to more than the full run. */
async function stagesOnce(state: string) {
  const env = { BB_STATE_DIR: state };
  const stages: Record<string, number> = {};
  const step = async (name: string, argv: string[], input?: string) => {
    const [ms, r] = await timed(() => run(argv, { env, input, timeoutMs: 300_000 }));
    stages[name] = ms;
    return r.stdout;
  };
  const prepared = await step("prepare", [bin("bb-prepare"), "shell", "-q"]);
  const bundled = await step("bundle", [bin("bb-bundle"), "--no-wait", "-q"], prepared);
  const vm = await step("vm", [bin("bb-vm"), "-q"], bundled);
  const ready = await step("provision (+ wait)", [bin("bb-provision"), "-q"], vm);
  const plan = JSON.parse(ready);
  await step("exec true", [bin("bb-vm"), "exec", "--slug", plan.slug, "--", "true"]);
  await new Promise((r) => setTimeout(r, 2000)); // let the daemons settle to idle
  const mem = await bundleMemory(plan.bundle.container);
  await step("teardown", [bin("bb-cleanup"), "--slug", plan.slug, "--yes", "-q"]);
  return { stages, mem };
}

async function bundleMemory(container: string) {
  const stats = await run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", container]);
  const m = /([\d.]+)\s*([KMG]i?B)/.exec(stats.stdout);
  const unit: Record<string, number> = { KiB: 1 / 1024, KB: 1 / 1024, MiB: 1, MB: 1, GiB: 1024, GB: 1024 };
  const totalMiB = m ? Number(m[1]) * (unit[m[2]!] ?? 1) : NaN;
  // VmRSS of each daemon process (node .../<daemon>.js) inside the bundle.
  const ps = await run(["docker", "exec", container, "sh", "-c", 'for p in /proc/[0-9]*; do c=$(tr "\\0" " " < $p/cmdline 2>/dev/null); r=$(awk "/VmRSS/{print \\$2}" $p/status 2>/dev/null); [ -n "$r" ] && echo "$r $c"; done']);
  const perDaemonMiB: Record<string, number> = {};
  for (const line of ps.stdout.split("\n")) {
    const mm = /^(\d+) .*\/sidecar\/([\w-]+)\.js/.exec(line);
    if (mm) perDaemonMiB[mm[2]!] = Math.round((Number(mm[1]) / 1024) * 10) / 10;
  }
  return { totalMiB: Math.round(totalMiB * 10) / 10, perDaemonMiB };
}

async function benchStart(opts: { runs: number; log?: (s: string) => void }): Promise<StartBench> {
  const say = opts.log ?? ((s: string) => process.stderr.write(s + "\n"));
  const agent = await ensureImage("agent");
  const sidecar = await ensureImage("sidecar");
  const state = await mkdtemp(join(tmpdir(), "bb-bench-start-"));
  try {
    say(`warming up (one full run)...`);
    await run([join(REPO, "scripts/flow.sh"), "run", "agent=shell", "--", "true"], { env: { BB_STATE_DIR: state }, timeoutMs: 300_000 });
    const just = justBinary();
    const bare: number[] = [];
    const full: number[] = [];
    const floor: number[] = [];
    const launcher: number[] = [];
    for (let i = 0; i < opts.runs; i++) {
      bare.push((await timed(() => run(["docker", "run", "--rm", agent.ref, "true"])))[0]);
      full.push((await timed(() => run([just.binary, "--justfile", join(REPO, "justfile"), "run", "agent=shell", "--", "true"], { env: { BB_STATE_DIR: state }, timeoutMs: 300_000 })))[0]);
      floor.push(await engineFloorOnce({ agent: agent.ref, sidecar: sidecar.ref }));
      if (just.launcher) {
        const viaNpm = (await timed(() => run([just.launcher!, "--version"])))[0];
        launcher.push(viaNpm - (await timed(() => run([just.binary, "--version"])))[0]);
      }
      say(`run ${i + 1}/${opts.runs}: bare ${Math.round(bare.at(-1)!)} ms, just run ${Math.round(full.at(-1)!)} ms, engine floor ${Math.round(floor.at(-1)!)} ms`);
    }
    const { stages, mem } = await stagesOnce(state);
    const bareMs = median(bare);
    const fullMs = median(full);
    const floorMs = median(floor);
    const npmLauncherMs = launcher.length ? median(launcher) : null;
    return { runs: opts.runs, bareMs, fullMs, ratio: fullMs / bareMs, floorMs, floorRatio: floorMs / bareMs, stagesMs: stages, bundleIdle: mem, just: { binary: just.binary, npmLauncherMs } };
  } finally {
    await rm(state, { recursive: true, force: true });
  }
}

function formatStart(b: StartBench): string {
  const r = (n: number) => `${Math.round(n)} ms`;
  const lines = [
    `start-run-teardown (median of ${b.runs}, warm images)`,
    `  bare docker run --rm <agent image> true   ${r(b.bareMs)}`,
    `  just run agent=shell -- true               ${r(b.fullMs)}`,
    `  ratio                                      ${b.ratio.toFixed(2)}x   (target <= 3x: ${b.ratio <= 3 ? "PASS" : "MISS"})`,
    `  engine floor (the design's docker work alone) ${r(b.floorMs)}   ${b.floorRatio.toFixed(2)}x bare${b.floorRatio > 3 ? ": the target is out of reach of the design on this engine" : ""}`,
    `    2 networks, bundle + agent containers, exec true, all removed; just run spends ${r(b.fullMs - b.floorMs)} over it`,
    `  just timed: ${b.just.binary.replace(REPO + "/", "")}`,
    ...(b.just.npmLauncherMs === null ? [] : [`  (npx just / node_modules/.bin/just adds ${r(b.just.npmLauncherMs)} more: npm's node launcher for it)`]),
    `stages (one tool after another; the flow overlaps them in one pipe)`,
    ...Object.entries(b.stagesMs).map(([k, v]) => `  ${k.padEnd(20)} ${r(v)}`),
    `bundle idle memory: ${b.bundleIdle.totalMiB} MiB (docker stats)`,
    ...Object.entries(b.bundleIdle.perDaemonMiB).map(([k, v]) => `  ${k.padEnd(20)} ${v} MiB RSS`),
  ];
  return lines.join("\n") + "\n";
}

export function startCommand(): Command {
  return new Command("start")
    .description("Time `just run agent=shell -- true` (warm images) and its stages against a bare docker run and the engine floor; the bundle's idle memory.")
    .option("--runs <n>", "timed runs (the median is reported)", runsFlag, 5)
    .option("--json", "print the result as JSON on stdout instead of the report")
    .addHelpText("after", `\nExample:\n  just bench start --runs 3\n\nA missed target is reported (MISS), never an exit code.\n\n${exitTableText()}\n`)
    .action(async (f: { runs: number; json?: boolean }) => {
      const b = await benchStart({ runs: f.runs });
      await writeStdout(f.json ? JSON.stringify(b, null, 2) + "\n" : formatStart(b));
    });
}
