// Fixture builder for the list/cleanup tests: real bottle leftovers made the way bb-prepare,
// bb-bundle and bb-vm make them (state dir with a real plan, labelled networks and
// containers), with `debian:bookworm-slim` running `sleep infinity` standing in for the
// bundle and the agent. Every resource carries bot-bottle.test=1 and a per-test run label
// the tools are scoped to (--filter-label), so a test never sees or touches anything else
// on this docker engine; everything is removed when the test ends.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import type { TestContext } from "node:test";
import * as docker from "../../docker/index.ts";
import { names } from "../../layout.ts";
import { bottleDir } from "../../paths.ts";
import { prepare } from "../../prepare/prepare.ts";
import { run as runProcess, start } from "../../proc.ts";
import { tempDir } from "../../../tests/support/tmp.ts";
import { REPO, runTool, type ToolRun } from "../../../tests/support/tools.ts";
import { OWNER_FILE, writeOwner } from "../owner.ts";

export const RUN_LABEL = "bot-bottle.test-run";

export interface TestRun {
  id: string;
  stateRoot: string;
  /** The flags every tool call gets: this run's state root and label scope. */
  flags: string[];
  /** Run bin/<tool> scoped to this run. */
  tool(name: "bb-list" | "bb-cleanup", args: string[], opts?: { env?: Record<string, string | undefined> }): Promise<ToolRun>;
}

/** A temp state root and a unique label; removes every docker resource carrying it at the end. */
export async function testRun(t: TestContext): Promise<TestRun> {
  const id = randomBytes(4).toString("hex");
  const stateRoot = await tempDir(t, "bb-inventory-");
  t.after(() => removeRun(id));
  const flags = ["--state-dir", stateRoot, "--filter-label", `${RUN_LABEL}=${id}`];
  return { id, stateRoot, flags, tool: (name, args, opts = {}) => runTool(name, [...args, ...flags], opts) };
}

async function removeRun(id: string): Promise<void> {
  const filter = { [RUN_LABEL]: id };
  for (const c of await docker.listContainers(filter)) await docker.removeContainer(c.id);
  for (const n of await docker.listNetworks(filter)) await docker.removeNetwork(n.id);
}

export interface BottleSpec {
  /** Suffix after the run id: slug is "t<id>-<name>". */
  name: string;
  /** State dir: a real plan (default), a plan.json that is not one, or none. */
  dir?: "plan" | "broken" | "none";
  /** owner.json: a live process, a process that has exited, or no file (default). */
  owner?: "alive" | "dead" | "none";
  networks?: boolean;
  bundle?: boolean;
  agent?: boolean;
  backend?: "docker" | "smolmachines";
  /** Age the state dir's modification time past any grace period. */
  old?: boolean;
}

export interface MadeBottle {
  slug: string;
  dir: string;
  ownerPid: number | null;
}

function labels(run: TestRun, slug: string, backend: docker.BackendName, role: docker.Role) {
  return docker.bottleLabels({ slug, backend, agent: "researcher", stateRoot: run.stateRoot, role, extra: { [docker.LABEL.test]: "1", [RUN_LABEL]: run.id } });
}

/** The pid of a process that has already exited. */
async function deadPid(): Promise<number> {
  const child = start(["true"], { stdio: "ignore" });
  await new Promise((resolve) => child.on("close", resolve));
  return child.pid!;
}

export async function makeBottle(t: TestContext, run: TestRun, spec: BottleSpec): Promise<MadeBottle> {
  const slug = `t${run.id}-${spec.name}`;
  const dir = bottleDir(run.stateRoot, slug);
  const mode = spec.dir ?? "plan";
  const backend = spec.backend ?? "docker";
  if (mode === "plan") {
    await prepare({ agent: "researcher", manifestDir: join(REPO, "bottles"), stateRoot: run.stateRoot, backend, cwd: null, identity: slug });
  } else if (mode === "broken") {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "plan.json"), "{ not a plan");
  }
  let ownerPid: number | null = null;
  if (mode !== "none" && spec.owner === "alive") {
    const child = start(["sleep", "300"], { stdio: "ignore" });
    t.after(() => void child.kill("SIGKILL"));
    ownerPid = child.pid!;
    await writeOwner(dir, ownerPid);
  } else if (mode !== "none" && spec.owner === "dead") {
    ownerPid = await deadPid();
    await writeOwner(dir, ownerPid);
  }
  if (mode !== "none" && spec.old) {
    const past = new Date(Date.now() - 3600_000);
    for (const p of [dir, join(dir, "plan.json"), join(dir, OWNER_FILE)]) await utimes(p, past, past).catch(() => {});
  }
  await makeResources(run, slug, spec);
  return { slug, dir, ownerPid };
}

/** A bottle's labelled networks and containers, as bb-bundle and bb-vm make them. */
export async function makeResources(run: TestRun, slug: string, spec: Pick<BottleSpec, "networks" | "bundle" | "agent" | "backend">): Promise<void> {
  const backend = spec.backend ?? "docker";
  // smolmachines: the bundle sits on one bridge network and the agent is a smolvm machine.
  const smol = backend === "smolmachines";
  if (spec.networks || spec.bundle || spec.agent) {
    if (!smol) await docker.createNetwork({ name: names.internalNet(slug), internal: true, labels: labels(run, slug, backend, "network-internal") });
    await docker.createNetwork({ name: names.egressNet(slug), labels: labels(run, slug, backend, "network-egress") });
  }
  const sleeper = (name: string, role: docker.Role) =>
    docker.runContainer({
      name,
      image: "debian:bookworm-slim",
      labels: labels(run, slug, backend, role),
      network: smol ? names.egressNet(slug) : names.internalNet(slug),
      init: true, // docker's init forwards SIGTERM, so `docker stop` is quick
      entrypoint: "sleep",
      cmd: ["infinity"],
    });
  await Promise.all([spec.bundle ? sleeper(names.bundle(slug), "bundle") : null, spec.agent ? sleeper(names.agent(slug), "agent") : null]);
}

/** Names of this run's docker resources that belong to `slug`, found by label. */
export async function resourcesOf(run: TestRun, slug: string): Promise<string[]> {
  const filter = { [RUN_LABEL]: run.id, [docker.LABEL.slug]: slug };
  const [cs, ns] = await Promise.all([docker.listContainers(filter), docker.listNetworks(filter)]);
  return [...cs.map((c) => c.name), ...ns.map((n) => n.name)].sort();
}

/** A container that is not bot-bottle's (no bot-bottle=1), attached to `network`: it keeps the network busy. */
export async function squatter(run: TestRun, network: string): Promise<string> {
  const name = `bb-test-squatter-${run.id}`;
  await docker.runContainer({
    name,
    image: "debian:bookworm-slim",
    labels: { [docker.LABEL.test]: "1", [RUN_LABEL]: run.id },
    network,
    init: true,
    entrypoint: "sleep",
    cmd: ["infinity"],
  });
  return name;
}

export interface FakeSmolvm {
  /** Environment that puts the stand-in first on PATH with its own HOME (its machine store). */
  env: Record<string, string | undefined>;
  /** A stopped machine in the stand-in's store, as `machine create` leaves it. */
  createMachine(name: string): Promise<void>;
  /** argv of every call the stand-in received, in order. */
  calls(): Promise<string[][]>;
}

/** The strict smolvm stand-in (tests/fakes/smolvm), speaking release 1.0.2. */
export async function fakeSmolvm(t: TestContext): Promise<FakeSmolvm> {
  const home = await tempDir(t, "bb-fake-smolvm-");
  const logFile = join(home, "calls.jsonl");
  const artifact = join(home, "agent.smolmachine");
  await writeFile(artifact, "");
  const binDir = join(REPO, "tests/fakes/smolvm");
  const env = { PATH: `${binDir}:${process.env.PATH}`, HOME: home, XDG_DATA_HOME: undefined, FAKE_SMOLVM_VERSION: "1.0.2", FAKE_SMOLVM_LOG: logFile };
  return {
    env,
    createMachine: async (name) => void (await runProcess([join(binDir, "smolvm"), "machine", "create", "--name", name, "--from", artifact], { env })),
    calls: async () =>
      (await readFile(logFile, "utf8").catch(() => ""))
        .split("\n")
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { argv: string[] }).argv),
  };
}
