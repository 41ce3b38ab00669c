import assert from "node:assert/strict";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { prepare } from "../prepare/prepare.ts";
import { run } from "../proc.ts";
import { openSmolvm, smolvmFor } from "../smolvm/driver.ts";
import { parseVersion } from "../smolvm/version.ts";
import { tempDir, writeTree } from "../../tests/support/tmp.ts";
import { REPO } from "../../tests/support/tools.ts";
import { bottleLabels, type ContainerSummary, type NetworkSummary, type Role, type VolumeSummary } from "../docker/index.ts";
import { log } from "../log.ts";
import { collect, machineSlug, readStateDirs, type DockerSource } from "./collect.ts";
import { writeOwner } from "./owner.ts";
import { fakeSmolvm } from "./testdata/bottles.ts";

test("readStateDirs() reads each bottle dir's plan and owner, tolerating a broken plan and skipping links and files", async (t) => {
  const root = await tempDir(t);
  const plan = await prepare({ agent: "researcher", manifestDir: join(REPO, "bottles"), stateRoot: root, backend: "docker", cwd: null, identity: "good-0001" });
  await writeOwner(plan.files.dir, process.pid);
  await mkdir(join(root, "bottles/broken"), { recursive: true });
  await writeFile(join(root, "bottles/broken/plan.json"), "[]");
  await mkdir(join(root, "bottles/bare"));
  // Not a bottle's: a folder of someone's own under a mistyped root, and a name no slug has.
  await writeTree(join(root, "bottles/junk"), { "notes.txt": "mine" });
  await mkdir(join(root, "bottles/UPPER"));
  const elsewhere = await tempDir(t);
  await symlink(elsewhere, join(root, "bottles/link"));
  await writeFile(join(root, "bottles/stray-file"), "");

  const dirs = await readStateDirs(root);
  assert.deepEqual([...dirs.keys()].sort(), ["bare", "broken", "good-0001"]);
  const good = dirs.get("good-0001")!;
  assert.equal(good.plan?.slug, "good-0001");
  assert.equal(good.planError, null);
  assert.deepEqual([good.owner?.pid, good.ownerAlive], [process.pid, true]);
  assert.match(dirs.get("broken")!.planError!, /not a JSON object|not a valid plan/);
  assert.match(dirs.get("bare")!.planError!, /Cannot read plan file/);
  assert.equal(dirs.get("bare")!.owner, null);
});

test("readStateDirs() of a state root that does not exist yet is empty", async (t) => {
  assert.equal((await readStateDirs(join(await tempDir(t), "nope"))).size, 0);
});

test("machineSlug() claims only machines named bb-<slug>", () => {
  assert.equal(machineSlug("bb-researcher-k3x9"), "researcher-k3x9");
  assert.equal(machineSlug("bb-"), null);
  assert.equal(machineSlug("bb-Upper"), null);
  assert.equal(machineSlug("my-vm"), null);
});

test("collect() groups by slug across state dirs and smolvm machines; a label scope keeps only machines of slugs in scope", async (t) => {
  const root = await tempDir(t);
  await mkdir(join(root, "bottles/r-0001"), { recursive: true });
  const fake = await fakeSmolvm(t);
  await Promise.all(["bb-r-0001", "bb-r-0002", "other"].map((n) => fake.createMachine(n)));
  const smolvm = await openSmolvm({ bin: join(REPO, "tests/fakes/smolvm/smolvm"), env: fake.env });

  const all = await collect({ stateRoot: root, docker: null, smolvm });
  assert.deepEqual(all.errors, []);
  assert.deepEqual(all.bottles.map((b) => [b.slug, b.dir !== null, b.machines.map((m) => m.name)]), [
    ["r-0001", true, ["bb-r-0001"]],
    ["r-0002", false, ["bb-r-0002"]],
  ]);
  const scoped = await collect({ stateRoot: root, docker: null, smolvm, scope: { "bot-bottle.test-run": "x" } });
  assert.deepEqual(scoped.bottles.map((b) => b.slug), ["r-0001"]);
});

test("collect() says an engine that fails every listing once, by the first that failed, not once a call", async (t) => {
  const root = await tempDir(t);
  const hung = (what: string) => () => Promise.reject(new Error(`Cannot list ${what}: the Docker engine did not answer \`docker ${what} ls\` within 2 s`));
  const inv = await collect({ stateRoot: root, docker: { listContainers: hung("containers"), listNetworks: hung("networks"), listVolumes: hung("volumes") }, smolvm: null, scope: { "bot-bottle.test-run": "x" } });
  assert.equal(inv.errors.length, 1, inv.errors.map((e) => e.message).join("\n"));
  assert.equal(inv.errors[0]!.backend, "docker");
  assert.match(inv.errors[0]!.message, /^Cannot list (containers|networks|volumes): the Docker engine did not answer/);
});

test("collect() records a backend it could not ask instead of throwing", async (t) => {
  const root = await tempDir(t);
  const fake = await fakeSmolvm(t);
  // A stand-in that does not know the release it is asked to be fails every call.
  const broken = smolvmFor(parseVersion("1.0.2"), { bin: join(REPO, "tests/fakes/smolvm/smolvm"), env: { ...fake.env, FAKE_SMOLVM_VERSION: "9.9.9" } });
  const inv = await collect({ stateRoot: root, docker: null, smolvm: broken });
  assert.equal(inv.errors.length, 1);
  assert.equal(inv.errors[0]!.backend, "smolmachines");
  assert.match(inv.errors[0]!.message, /Cannot list smolvm machines/);
});

/** Docker holding the given containers, networks and volumes, answering label filters as the CLI does. */
function engine(containers: ContainerSummary[], networks: NetworkSummary[], volumes: VolumeSummary[] = []): DockerSource {
  const matching = <T extends { labels: Record<string, string> }>(items: T[], filter: Record<string, string | undefined>) =>
    items.filter((x) => Object.entries(filter).every(([k, v]) => x.labels[k] === v));
  return { listContainers: async (f) => matching(containers, f), listNetworks: async (f) => matching(networks, f), listVolumes: async (f) => matching(volumes, f) };
}
const labelled = (slug: string, stateRoot: string | null, role: Role, backend: "docker" | "smolmachines" = "docker") =>
  bottleLabels({ slug, backend, agent: "shell", stateRoot, role });
const container = (name: string, labels: Record<string, string>, state = "running"): ContainerSummary => ({ id: `id-${name}`, name, image: "i", state, status: "", createdAt: "", labels });
const network = (name: string, labels: Record<string, string>): NetworkSummary => ({ id: `id-${name}`, name, driver: "bridge", internal: false, createdAt: "", labels });

test("collect() keeps a slug of this root and the same slug of another root apart; a smolvm machine goes to the root whose bottle is a smolmachines one", async (t) => {
  const here = await tempDir(t);
  const other = "/srv/other-root";
  // This root's state dir for dup (its bb-bundle refused: SLUG_TAKEN), while the other
  // root's bottle dup runs; this root's own bottle mine; the other root's smolvm bottle vm.
  await mkdir(join(here, "bottles/dup"), { recursive: true });
  await mkdir(join(here, "bottles/mine"), { recursive: true });
  const docker = engine(
    [
      container("bb-dup-agent", labelled("dup", other, "agent")),
      container("bb-mine-agent", labelled("mine", here, "agent")),
      container("bb-vm-bundle", labelled("vm", other, "bundle", "smolmachines")),
    ],
    [network("bb-dup-egress", labelled("dup", other, "network-egress")), network("bb-old-egress", labelled("old", null, "network-egress"))],
  );
  const fake = await fakeSmolvm(t);
  await Promise.all(["bb-vm", "bb-dup", "bb-stray"].map((n) => fake.createMachine(n)));
  const smolvm = await openSmolvm({ bin: join(REPO, "tests/fakes/smolvm/smolvm"), env: fake.env });

  const inv = await collect({ stateRoot: here, docker, smolvm });
  assert.deepEqual(inv.errors, []);
  const rows = inv.bottles.map((b) => [b.slug, b.elsewhere, b.dir?.path ?? null, b.containers.map((c) => c.name), b.networks.map((n) => n.name), b.machines.map((m) => m.name)]);
  assert.deepEqual(rows, [
    ["dup", null, join(here, "bottles/dup"), [], [], ["bb-dup"]],
    ["dup", other, null, ["bb-dup-agent"], ["bb-dup-egress"], []],
    ["mine", null, join(here, "bottles/mine"), ["bb-mine-agent"], [], []],
    // Made before the state-root label: judged as this root's.
    ["old", null, null, [], ["bb-old-egress"], []],
    ["stray", null, null, [], [], ["bb-stray"]],
    ["vm", other, null, ["bb-vm-bundle"], [], ["bb-vm"]],
  ]);
});

test("collect() gives a bottle its git-gate volume, one left behind alone a bottle of its own, and leaves alone a volume bot-bottle does not name so", async (t) => {
  const here = await tempDir(t);
  await mkdir(join(here, "bottles/mine"), { recursive: true });
  const volume = (name: string, labels: Record<string, string>): VolumeSummary => ({ name, labels });
  const docker = engine(
    [container("bb-mine-bundle", labelled("mine", here, "bundle"))],
    [],
    [volume("bb-mine-git-gate", labelled("mine", here, "volume-git-gate")), volume("bb-gone-git-gate", labelled("gone", here, "volume-git-gate")), volume("my-data", labelled("mine", here, "volume-git-gate"))],
  );
  const warnings: string[] = [];
  t.mock.method(log, "warn", (m: string) => void warnings.push(m));
  const inv = await collect({ stateRoot: here, docker, smolvm: null });
  assert.deepEqual(inv.bottles.map((b) => [b.slug, b.dir !== null, b.volumes]), [
    ["gone", false, [{ name: "bb-gone-git-gate", role: "volume-git-gate" }]],
    ["mine", true, [{ name: "bb-mine-git-gate", role: "volume-git-gate" }]],
  ]);
  assert.deepEqual(warnings, ["left alone: volume my-data carries bot-bottle's labels but is not a bottle's (bot-bottle names bottle mine's volume-git-gate bb-mine-git-gate)"]);
});

test("collect() with a label scope leaves out the state dir of a bottle with docker resources outside the scope (judged by none of them, a running bottle would look dead)", async (t) => {
  const here = await tempDir(t);
  for (const slug of ["live", "tested", "dead"]) await mkdir(join(here, "bottles", slug), { recursive: true });
  const scope = { "bot-bottle.test": "1" };
  const docker = engine(
    [
      container("bb-live-agent", labelled("live", here, "agent")),
      container("bb-tested-agent", { ...labelled("tested", here, "agent"), ...scope }, "exited"),
    ],
    [network("bb-live-int", labelled("live", here, "network-internal")), network("bb-tested-int", { ...labelled("tested", here, "network-internal"), ...scope })],
  );
  const rows = (inv: Awaited<ReturnType<typeof collect>>) => inv.bottles.map((b) => [b.slug, b.dir !== null, b.containers.length + b.networks.length]);
  assert.deepEqual(rows(await collect({ stateRoot: here, docker, smolvm: null })), [["dead", true, 0], ["live", true, 2], ["tested", true, 2]]);
  // In scope: the test's own bottle and a state dir nothing on the engine belongs to.
  assert.deepEqual(rows(await collect({ stateRoot: here, docker, smolvm: null, scope })), [["dead", true, 0], ["tested", true, 2]]);
});

test("collect() leaves alone, and names, a container or network carrying a bottle's labels under a name bot-bottle does not give it (one run from an image committed from a bottle's container), or under a slug label that is no slug", async (t) => {
  const here = await tempDir(t);
  const docker = engine(
    [
      container("bb-mine-agent", labelled("mine", here, "agent")),
      // docker run --name my-db an-image-committed-from-bb-mine-agent
      container("my-db", labelled("mine", here, "agent")),
      container("bb-mine-bundle", labelled("mine", here, "agent")),
      container("bb-x\u001b[2K-agent", { ...labelled("x", here, "agent"), "bot-bottle.slug": "x\u001b[2K" }),
    ],
    [network("bb-mine-int", labelled("mine", here, "network-internal")), network("their-net", labelled("mine", here, "network-egress")), network("bb-mine-other", { ...labelled("mine", here, "network-egress"), "bot-bottle.role": "other" })],
  );
  const warnings: string[] = [];
  t.mock.method(log, "warn", (m: string) => void warnings.push(m));
  const inv = await collect({ stateRoot: here, docker, smolvm: null });
  assert.deepEqual(inv.bottles.map((b) => [b.slug, b.containers.map((c) => c.name), b.networks.map((n) => n.name)]), [["mine", ["bb-mine-agent"], ["bb-mine-int"]]]);
  assert.deepEqual(warnings, [
    "left alone: container my-db carries bot-bottle's labels but is not a bottle's (bot-bottle names bottle mine's agent bb-mine-agent)",
    "left alone: container bb-mine-bundle carries bot-bottle's labels but is not a bottle's (bot-bottle names bottle mine's agent bb-mine-agent)",
    'left alone: container bb-x\u001b[2K-agent carries bot-bottle\'s labels but is not a bottle\'s (its bot-bottle.slug label "x\\u001b[2K" is no slug)',
    "left alone: network their-net carries bot-bottle's labels but is not a bottle's (bot-bottle names bottle mine's network-egress bb-mine-egress)",
    'left alone: network bb-mine-other carries bot-bottle\'s labels but is not a bottle\'s (its bot-bottle.role label "other" is no role bot-bottle gives)',
  ]);
  // With a scope, a look-alike outside it hides no state dir of this root either.
  await mkdir(join(here, "bottles/kept"), { recursive: true });
  const scoped = engine([container("someones-box", labelled("kept", here, "agent"))], []);
  assert.deepEqual((await collect({ stateRoot: here, docker: scoped, smolvm: null, scope: { "bot-bottle.test": "1" } })).bottles.map((b) => b.slug), ["kept"]);
});

test("readStateDirs() names a plan.json or owner.json that is a FIFO, a link to a device or a folder, instead of waiting on it forever", { timeout: 20_000 }, async (t) => {
  const root = await tempDir(t);
  const dir = (slug: string) => join(root, "bottles", slug);
  for (const slug of ["fifo-plan", "zero-plan", "fifo-owner", "folder-owner"]) await mkdir(dir(slug), { recursive: true });
  await run(["mkfifo", join(dir("fifo-plan"), "plan.json"), join(dir("fifo-owner"), "owner.json")]);
  await symlink("/dev/zero", join(dir("zero-plan"), "plan.json"));
  await mkdir(join(dir("folder-owner"), "owner.json"));
  const dirs = await readStateDirs(root);
  assert.deepEqual([...dirs.keys()].sort(), ["fifo-owner", "fifo-plan", "folder-owner", "zero-plan"]);
  assert.equal(dirs.get("fifo-plan")!.planError, `Cannot read plan file ${join(dir("fifo-plan"), "plan.json")}: ${join(dir("fifo-plan"), "plan.json")} is a FIFO, not a regular file`);
  assert.match(dirs.get("zero-plan")!.planError!, /plan\.json is a device, not a regular file$/);
  for (const slug of ["fifo-owner", "folder-owner"]) assert.equal(dirs.get(slug)!.owner, null);
});

test("readStateDirs() takes a folder holding only what bb-bundle or bb-provision wrote there (git-gate's mirrors, say) for a bottle's", async (t) => {
  const root = await tempDir(t);
  for (const entry of ["git-gate-data", "git-gate-identities", "upstream-ca", "provision"]) await mkdir(join(root, "bottles", `only-${entry}`, entry), { recursive: true });
  await writeTree(join(root, "bottles/only-loopback"), { "loopback-addr": "127.0.0.16\n" });
  assert.deepEqual([...(await readStateDirs(root)).keys()].sort(), ["only-git-gate-data", "only-git-gate-identities", "only-loopback", "only-provision", "only-upstream-ca"]);
});
