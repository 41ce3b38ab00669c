#!/usr/bin/env node
// The one test command (`npm test`, `just test`): runs every *.test.ts file under Node's
// test runner (through tsx) and under `deno test`, and prints one closing line
// "N passed, N failed, N skipped". Plain JavaScript so it runs before anything is built.
//
//   node scripts/test.mjs [--runtime node|deno|both] [--tier unit|docker|all] [--require-docker] [FILE...]
//
// Tiers: files named *.docker.test.ts need a Docker engine (the integration tests and
// the escape suite); everything else is "unit" (pure units, in-process and real-process
// tests on loopback). When no Docker engine answers, the docker tier is skipped, the
// reason printed, and its files counted in the closing line's skipped; with
// --require-docker (CI, which starts dockerd) that is a failure instead.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const args = process.argv.slice(2);
function flag(name, def) {
  const i = args.indexOf(name);
  if (i === -1) return def;
  const v = args[i + 1];
  if (v === undefined || v.startsWith("-")) usageError(`${name} needs a value`);
  args.splice(i, 2);
  return v;
}
function has(name) {
  const i = args.indexOf(name);
  if (i !== -1) args.splice(i, 1);
  return i !== -1;
}
const USAGE = "usage: just test [--runtime node|deno|both] [--tier unit|docker|all] [--require-docker] [FILE...]";
const runtime = flag("--runtime", process.env.BB_TEST_RUNTIME ?? "both");
const tier = flag("--tier", process.env.BB_TEST_TIER ?? "all");
const requireDocker = has("--require-docker");
// Anything else was taken for a FILE to test: --help ran node's own help as one.
if (has("--help") || has("-h")) {
  console.log(USAGE);
  process.exit(0);
}
function usageError(message) {
  console.error(`test: ${message} (${USAGE})`);
  process.exit(2);
}
if (!["node", "deno", "both"].includes(runtime)) usageError(`--runtime ${runtime} is not node, deno or both`);
if (!["unit", "docker", "all"].includes(tier)) usageError(`--tier ${tier} is not unit, docker or all`);
for (const a of args) {
  if (a.startsWith("-")) usageError(`unknown option '${a}'`);
  // Files are run from the checkout (the runners' cwd below).
  if (!existsSync(resolve(root, a))) usageError(`no test file ${a} (in ${root})`);
}
const runtimes = runtime === "both" ? ["node", "deno"] : [runtime];
// This run's id: every docker resource its tests make is labelled bot-bottle.test-suite=ID
// (lib/docker/labels.ts testLabels), so the leak sweep below takes only this run's, never
// those of another run, or of a test run by hand, on the same engine.
const suite = randomBytes(6).toString("hex");
process.env.BB_TEST_SUITE = suite;

const ROOTS = ["lib", "tools", "sidecar-image", "smolmachine-pack", "tests"];
/** Files under `dir` (outside node_modules, and testdata unless `inTestdata`) whose name `pick` takes, from the checkout's root. */
function find(dir, pick, inTestdata = false, out = []) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e === "node_modules" || (e === "testdata" && !inTestdata) || e.startsWith(".")) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) find(p, pick, inTestdata, out);
    else if (pick(e)) out.push(relative(root, p));
  }
  return out;
}
const isTest = (name) => name.endsWith(".test.ts");

/**
 * Why dist/ does not hold the current sources (a bundle missing, or older than a source
 * it is built from), or null. bin/ then runs the tools from source, slower and saying so
 * on stderr, and the tests of the bundles themselves fail over it.
 */
function staleDist() {
  const mains = (dir, out) =>
    existsSync(join(root, dir)) ? readdirSync(join(root, dir)).filter((n) => existsSync(join(root, dir, n, "main.ts"))).map((n) => `${out}/${n}.js`) : [];
  const bundles = [...mains("tools", "dist"), ...mains("sidecar-image", "dist/sidecar")];
  const missing = bundles.find((b) => !existsSync(join(root, b)));
  if (missing) return `${missing} is missing`;
  const built = Math.min(...bundles.map((b) => statSync(join(root, b)).mtimeMs));
  // The sources bin/_run compares with, testdata's helpers among them, and the daemons'.
  const sources = ["lib", "tools", "sidecar-image", "smolmachine-pack"].flatMap((r) => find(join(root, r), (n) => n.endsWith(".ts") && !isTest(n), true));
  const newer = sources.find((f) => statSync(join(root, f)).mtimeMs > built);
  return newer ? `dist/ is older than ${newer}` : null;
}

let files = args.length ? args : ROOTS.flatMap((r) => find(join(root, r), isTest)).sort();
const isDocker = (f) => f.endsWith(".docker.test.ts");
if (tier === "unit") files = files.filter((f) => !isDocker(f));
if (tier === "docker") files = files.filter(isDocker);

const NO_ENGINE = "no Docker engine answers 'docker info'";
const dockerOk = spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], { stdio: "ignore" }).status === 0;
const dockerSkipped = dockerOk ? [] : files.filter(isDocker);
if (dockerSkipped.length) {
  if (requireDocker) {
    console.error(`FAILED (--require-docker): ${NO_ENGINE}, so ${dockerSkipped.length} docker-tier file(s) cannot run: ${dockerSkipped.join(", ")}`);
    console.error("  start dockerd (see README, Prerequisites), or leave out --require-docker to skip them.");
    process.exit(1);
  }
  console.error(`SKIPPED (${NO_ENGINE}): ${dockerSkipped.length} docker-tier file(s): ${dockerSkipped.join(", ")}`);
  console.error("  start dockerd (see README, Prerequisites) to run the integration tests and the escape suite.");
  files = files.filter((f) => !isDocker(f));
}
if (files.length === 0) {
  console.error("no test files selected");
  process.exit(1);
}

// Tests run the tools as bin/ does, from dist/, and the docker tier builds the bundle
// image from dist/sidecar: so a run tests what is built, as `npm test` (which builds first) does.
const stale = staleDist();
if (stale) {
  console.error(`${stale}: building it first (npm run build)`);
  if (spawnSync("npm", ["run", "build"], { cwd: root, stdio: ["ignore", 2, 2] }).status !== 0) {
    console.error("FAILED: npm run build failed, so the tests would run over an older dist/");
    process.exit(1);
  }
}

const totals = { passed: 0, failed: 0, skipped: 0 };
let failedRuns = [];

/** Run a test runner, streaming its stdout as it comes (progress) and keeping it to count. */
function stream(cmd, argv, env) {
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { cwd: root, env, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (b) => {
      out += b;
      process.stdout.write(b);
    });
    child.on("close", (code) => resolve({ status: code, stdout: out }));
  });
}

async function runNode() {
  console.error(`\n=== node --test (${files.length} files) ===`);
  const r = await stream(process.execPath, ["--import", join(root, "node_modules/tsx/dist/loader.mjs"), "--test", "--test-reporter=spec", "--test-concurrency=1", ...files], process.env);
  const num = (re) => Number((r.stdout.match(re) ?? [])[1] ?? 0);
  totals.passed += num(/ℹ pass (\d+)/);
  totals.failed += num(/ℹ fail (\d+)/) + num(/ℹ cancelled (\d+)/);
  totals.skipped += num(/ℹ skipped (\d+)/);
  if (r.status !== 0) failedRuns.push("node");
  else if (num(/ℹ tests (\d+)/) === 0) ranNone("node");
}

async function runDeno() {
  console.error(`\n=== deno test (${files.length} files) ===`);
  const r = await stream(join(root, "node_modules/.bin/deno"), ["test", "-A", "--no-check", ...files], { ...process.env, NO_COLOR: "1" });
  const last = [...r.stdout.matchAll(/(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \| (\d+) ignored)?/g)].pop();
  if (last) {
    totals.passed += Number(last[1]);
    totals.failed += Number(last[2]);
    totals.skipped += Number(last[3] ?? 0);
    if (r.status === 0 && last.slice(1).every((n) => !Number(n))) ranNone("deno");
  } else {
    totals.failed += 1; // no summary line: the run itself broke
  }
  if (r.status !== 0) failedRuns.push("deno");
}

/** A runner that found no test in the files it was given (a recursive node --test run
 * skips them all) said nothing failed: that is no evidence, so it counts as a failure. */
function ranNone(name) {
  console.error(`\nFAILED: the ${name} run ran no test at all in ${files.length} file(s)`);
  totals.failed += 1;
  failedRuns.push(`${name} (ran no test)`);
}

/**
 * Containers, networks and volumes a run left behind: every test labels what it makes with this
 * run's id and removes it when it ends, so any still here is a leak, counted as a failure
 * of that run, and removed, so the next runtime's run starts clean.
 */
function sweepLeaks(name) {
  if (!dockerOk || !files.some(isDocker)) return;
  // Each line "ID what": a volume's ID is its name.
  const list = (what, name, id = "{{.ID}}") =>
    (spawnSync("docker", [...what, "--filter", `label=bot-bottle.test-suite=${suite}`, "--format", `${id} ${name}`], { encoding: "utf8" }).stdout ?? "")
      .split("\n")
      .filter(Boolean);
  const containers = list(["ps", "-a"], "container {{.Names}}");
  const networks = list(["network", "ls"], "network {{.Name}}");
  const volumes = list(["volume", "ls"], "volume {{.Name}}", "{{.Name}}");
  if (containers.length + networks.length + volumes.length === 0) return;
  console.error(`\nLEAKED by the ${name} run (test-labelled docker resources still there after it; removing them):`);
  for (const line of [...containers, ...networks, ...volumes]) console.error(`  ${line}`);
  const ids = (lines) => lines.map((l) => l.split(" ")[0]);
  if (containers.length) spawnSync("docker", ["rm", "-f", ...ids(containers)], { stdio: "ignore" });
  if (networks.length) spawnSync("docker", ["network", "rm", ...ids(networks)], { stdio: "ignore" });
  if (volumes.length) spawnSync("docker", ["volume", "rm", ...ids(volumes)], { stdio: "ignore" });
  totals.failed += 1;
  failedRuns.push(`${name} (left docker resources)`);
}

if (runtimes.includes("node")) {
  await runNode();
  sweepLeaks("node");
}
if (runtimes.includes("deno")) {
  await runDeno();
  sweepLeaks("deno");
}

// Each skipped docker-tier file counts once per runtime, as a test of either runtime does.
const dockerSkips = dockerSkipped.length * runtimes.length;
const perRuntime = runtimes.length > 1 ? `, ${dockerSkipped.length} under each of ${runtimes.join(" and ")}` : "";
const including = dockerSkips ? ` (including ${dockerSkips} docker-tier file${dockerSkips === 1 ? "" : "s"}${perRuntime}: ${NO_ENGINE})` : "";
console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped + dockerSkips} skipped${including}`);
if (failedRuns.length) {
  console.error(`failing runtime(s): ${failedRuns.join(", ")}`);
  process.exit(1);
}
