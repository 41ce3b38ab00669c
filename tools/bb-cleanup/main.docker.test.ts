import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { existsSync } from "node:fs";
import { mkdir, symlink } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import type { ListRow } from "../../lib/inventory/format.ts";
import { fakeSmolvm, makeBottle, makeResources, resourcesOf, RUN_LABEL, squatter, testRun } from "../../lib/inventory/testdata/bottles.ts";
import { writeOwner } from "../../lib/inventory/owner.ts";
import { names } from "../../lib/layout.ts";
import { run as runProcess, start } from "../../lib/proc.ts";
import { hangingEngine, realEngineSocket } from "../../tests/support/hanging-engine.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { REPO, runTool } from "../../tests/support/tools.ts";

interface Report {
  dryRun: boolean;
  plan: { slug: string; live: boolean; containers: { name: string; id: string }[]; networks: { name: string; id: string }[]; stateDir: string | null }[];
  kept: { slug: string; why: string }[];
  results: { slug: string; kind: string; name: string; ok: boolean; error?: string }[] | null;
}

test("bb-cleanup --yes removes a dead bottle's bundle, networks and state dir, and leaves live bottles alone", async (t) => {
  const run = await testRun(t);
  const [dead, running, starting, emptyDir] = await Promise.all([
    // The start flow died after bb-bundle: agent container gone, bundle and networks left.
    makeBottle(t, run, { name: "dead", owner: "dead", bundle: true, networks: true }),
    makeBottle(t, run, { name: "running", bundle: true, agent: true }),
    // The start flow is still building it: nothing running yet, owner alive.
    makeBottle(t, run, { name: "starting", owner: "alive", networks: true }),
    // Only a state dir, with a plan.json that is not a plan.
    makeBottle(t, run, { name: "empty", dir: "broken", old: true }),
  ]);
  const r = await run.tool("bb-cleanup", ["--yes", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const report = r.json() as Report;
  assert.deepEqual(report.plan.map((p) => p.slug).sort(), [dead.slug, emptyDir.slug].sort());
  assert.deepEqual(report.kept.map((k) => k.slug).sort(), [running.slug, starting.slug].sort());
  assert.ok(report.results!.every((x) => x.ok), JSON.stringify(report.results));
  assert.match(r.stderr, new RegExp(`${dead.slug} \\(docker, researcher\\): owner pid \\d+ gone`));
  // A host without smolvm has no machines to find: that is said only with -v.
  assert.doesNotMatch(r.stderr, /smolvm is not installed/);

  assert.deepEqual(await resourcesOf(run, dead.slug), []);
  assert.ok(!existsSync(dead.dir) && !existsSync(emptyDir.dir));
  assert.deepEqual(await resourcesOf(run, running.slug), [names.agent(running.slug), names.bundle(running.slug), names.egressNet(running.slug), names.internalNet(running.slug)].sort());
  assert.deepEqual(await resourcesOf(run, starting.slug), [names.egressNet(starting.slug), names.internalNet(starting.slug)].sort());
  assert.ok(existsSync(running.dir) && existsSync(starting.dir));
});

test("bb-cleanup --slug tears down a live bottle, and is a no-op for a bottle that is gone", async (t) => {
  const run = await testRun(t);
  const [live, other] = await Promise.all([
    makeBottle(t, run, { name: "live", owner: "alive", bundle: true, agent: true }),
    makeBottle(t, run, { name: "other", owner: "dead", bundle: true }),
  ]);
  const r = await run.tool("bb-cleanup", ["--slug", live.slug, "--yes", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const report = r.json() as Report;
  assert.equal(report.plan.length, 1);
  assert.equal(report.plan[0]!.live, true);
  // Containers (removed together), then networks (together) once their containers are
  // gone, state dir last.
  const steps = report.results!.map((x) => `${x.kind} ${x.name}`);
  assert.deepEqual(steps.slice(0, 2).sort(), [`container ${names.agent(live.slug)}`, `container ${names.bundle(live.slug)}`]);
  assert.deepEqual(steps.slice(2, 4).sort(), [`network ${names.egressNet(live.slug)}`, `network ${names.internalNet(live.slug)}`]);
  assert.deepEqual(steps.slice(4), [`state dir ${live.dir}`]);
  assert.ok(report.results!.every((x) => x.ok), JSON.stringify(report.results));
  assert.deepEqual(await resourcesOf(run, live.slug), []);
  assert.ok(!existsSync(live.dir));
  // --slug touches nothing but that bottle, not even an orphan.
  assert.equal((await resourcesOf(run, other.slug)).length, 3);
  assert.ok(existsSync(other.dir));

  const again = await run.tool("bb-cleanup", ["--slug", live.slug, "--yes"]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, new RegExp(`nothing left of bottle ${live.slug}`));
  const bad = await run.tool("bb-cleanup", ["--slug", "../etc", "--yes"]);
  assert.equal(bad.code, 2, bad.stderr);
});

test("bb-cleanup without --yes and without a terminal refuses with exit 2; --dry-run prints the plan; neither changes anything", async (t) => {
  const run = await testRun(t);
  const dead = await makeBottle(t, run, { name: "dead", owner: "dead", bundle: true, networks: true });
  const before = await resourcesOf(run, dead.slug);
  assert.equal(before.length, 3);

  const refused = await run.tool("bb-cleanup", ["--json"]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /Refusing to remove anything without confirmation: stdin is not a terminal.*--yes/);
  assert.match(refused.stderr, new RegExp(names.bundle(dead.slug)));
  assert.equal(refused.stdout, "");

  const dry = await run.tool("bb-cleanup", ["--dry-run", "--json"]);
  assert.equal(dry.code, 0, dry.stderr);
  const report = dry.json() as Report;
  assert.equal(report.dryRun, true);
  assert.equal(report.results, null);
  assert.deepEqual(report.plan.map((p) => [p.slug, p.containers.map((c) => c.name), p.networks.map((n) => n.name), p.stateDir]), [
    [dead.slug, [names.bundle(dead.slug)], [names.egressNet(dead.slug), names.internalNet(dead.slug)], dead.dir],
  ]);
  assert.match(dry.stderr, /bb-cleanup would remove:/);

  assert.deepEqual(await resourcesOf(run, dead.slug), before);
  assert.ok(existsSync(dead.dir));
});

test("bb-cleanup reports a removal that fails, still removes the rest but the state dir, and exits 1", async (t) => {
  const run = await testRun(t);
  const dead = await makeBottle(t, run, { name: "dead", owner: "dead", bundle: true, networks: true });
  // A container that is not bot-bottle's keeps the internal network busy.
  await squatter(run, names.internalNet(dead.slug));
  const r = await run.tool("bb-cleanup", ["--yes", "--json"]);
  assert.equal(r.code, 1, r.stderr);
  const failed = (r.json() as Report).results!.filter((x) => !x.ok);
  assert.deepEqual(failed.map((x) => [x.kind, x.name]), [["network", names.internalNet(dead.slug)], ["state dir", dead.dir]]);
  assert.match(failed[0]!.error!, /active endpoints|in use/i);
  assert.match(r.stderr, new RegExp(`could not remove network ${names.internalNet(dead.slug)} \\(${dead.slug}\\)`));
  // The state dir stays with the network: it is what judges the rest an orphan's.
  assert.match(r.stderr, new RegExp(`could not remove state dir ${dead.dir} \\(${dead.slug}\\): kept while 1 other resource\\(s\\) of the bottle remain`));
  assert.match(r.stderr, /2 of 4 removal\(s\) failed/);
  assert.deepEqual(await resourcesOf(run, dead.slug), [names.internalNet(dead.slug)]);
  assert.ok(existsSync(dead.dir));
});

test("bb-cleanup and its --slug teardown leave alone a container run from an image committed from a bottle's: it carries the bottle's labels under a name of its own", async (t) => {
  const run = await testRun(t);
  const dead = await makeBottle(t, run, { name: "dead", owner: "dead", bundle: true, networks: true, old: true });
  // `docker commit` keeps the container's labels in the image, and every container run from
  // that image carries them: bot-bottle=1, the slug, the role, this root.
  const image = `bb-test-committed-${run.id}`;
  const mine = `bb-test-mine-${run.id}`;
  t.after(async () => {
    await runProcess(["docker", "rm", "--force", mine], { expect: [0, 1] });
    await runProcess(["docker", "image", "rm", "--force", image], { expect: [0, 1] });
  });
  await runProcess(["docker", "commit", names.bundle(dead.slug), image]);
  await runProcess(["docker", "run", "--detach", "--name", mine, "--volume", "/data", image]);
  assert.equal((await resourcesOf(run, dead.slug)).length, 4, "the committed image's container carries the bottle's labels");

  const listed = await run.tool("bb-list", ["--all", "--json"]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual((listed.json() as ListRow[]).map((r) => [r.slug, r.containers.map((c) => c.name)]), [[dead.slug, [names.bundle(dead.slug)]]]);
  assert.match(listed.stderr, new RegExp(`^bb-list: warning: left alone: container ${mine} carries bot-bottle's labels but is not a bottle's \\(bot-bottle names bottle ${dead.slug}'s bundle ${names.bundle(dead.slug)}\\)`, "m"));
  const swept = await run.tool("bb-cleanup", ["--yes", "--grace", "0", "--json"]);
  assert.equal(swept.code, 0, swept.stderr);
  assert.deepEqual((swept.json() as Report).results!.map((x) => [x.kind, x.name]).sort(), [
    ["container", names.bundle(dead.slug)], ["network", names.egressNet(dead.slug)], ["network", names.internalNet(dead.slug)], ["state dir", dead.dir],
  ].sort());
  assert.deepEqual(await resourcesOf(run, dead.slug), [mine]);
  const slug = await run.tool("bb-cleanup", ["--slug", dead.slug, "--yes"]);
  assert.equal(slug.code, 0, slug.stderr);
  assert.match(slug.stderr, new RegExp(`nothing left of bottle ${dead.slug}`));
  assert.equal((await runProcess(["docker", "inspect", "--format", "{{.State.Running}}", mine])).stdout.trim(), "true");
});

test("bb-cleanup keeps a bottle with no owner record during the grace period, and takes it with --grace 0", async (t) => {
  const run = await testRun(t);
  // bb-bundle run by hand a moment ago, bb-vm not yet: no owner, no agent, no state dir here.
  const young = await makeBottle(t, run, { name: "young", dir: "none", bundle: true });
  const kept = await run.tool("bb-cleanup", ["--yes", "--json"]);
  assert.equal(kept.code, 0, kept.stderr);
  assert.match((kept.json() as Report).kept.find((k) => k.slug === young.slug)?.why ?? "", /no owner recorded yet/);
  assert.equal((await resourcesOf(run, young.slug)).length, 3);

  const taken = await run.tool("bb-cleanup", ["--yes", "--grace", "0"]);
  assert.equal(taken.code, 0, taken.stderr);
  assert.deepEqual(await resourcesOf(run, young.slug), []);
});

test("bb-cleanup asks y/N on a terminal: n removes nothing (exit 1), y removes the orphans", async (t) => {
  const run = await testRun(t);
  const dead = await makeBottle(t, run, { name: "dead", owner: "dead", bundle: true });
  // `script` gives the tool a real pseudo-terminal as stdin and types the answer into it.
  const ask = (answer: string) =>
    runProcess(["script", "-qec", [join(REPO, "bin/bb-cleanup"), ...run.flags].join(" "), "/dev/null"], {
      input: `${answer}\n`,
      env: { BB_FROM_SOURCE: "1" },
      expect: [0, 1, 2],
      timeoutMs: 60_000,
    });
  const no = await ask("n");
  assert.equal(no.code, 1, no.stdout);
  assert.match(no.stdout, /Remove all of the above\? \[y\/N\] .*nothing removed/s);
  assert.equal((await resourcesOf(run, dead.slug)).length, 3);
  assert.ok(existsSync(dead.dir));

  const yes = await ask("y");
  assert.equal(yes.code, 0, yes.stdout);
  assert.deepEqual(await resourcesOf(run, dead.slug), []);
  assert.ok(!existsSync(dead.dir));
});

test("a y/N answered after `just start slug=S` took a bottle the plan had as an orphan leaves that bottle: its new containers (under the old names) and its state dir", async (t) => {
  const run = await testRun(t);
  const [taken, dead] = await Promise.all([
    makeBottle(t, run, { name: "taken", owner: "dead", bundle: true, networks: true, old: true }),
    makeBottle(t, run, { name: "dead", owner: "dead", bundle: true, old: true }),
  ]);
  const term = start(["script", "-qec", [join(REPO, "bin/bb-cleanup"), "--grace", "0", ...run.flags].join(" "), "/dev/null"], {
    env: { BB_FROM_SOURCE: "1" },
    stdio: ["pipe", "pipe", "ignore"],
  });
  t.after(() => void term.kill("SIGKILL"));
  let out = "";
  term.stdout!.on("data", (b: Buffer) => (out += b));
  const closed = new Promise((r) => term.on("close", r));
  for (let i = 0; i < 600 && !out.includes("Remove all of the above?"); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(out, new RegExp(`${taken.slug} \\(docker, researcher\\): owner pid \\d+ gone`));

  // Meanwhile, what the resume does: its flow's owner record, then the stopped bottle's
  // containers and networks replaced by new ones under the same names.
  const flow = start(["sleep", "300"], { stdio: "ignore" });
  t.after(() => void flow.kill("SIGKILL"));
  await writeOwner(taken.dir, flow.pid!);
  await runProcess(["docker", "rm", "--force", names.bundle(taken.slug)]);
  await runProcess(["docker", "network", "rm", names.egressNet(taken.slug), names.internalNet(taken.slug)]);
  await makeResources(run, taken.slug, { bundle: true, networks: true });
  const resumed = await resourcesOf(run, taken.slug);

  term.stdin!.write("y\n");
  await closed;
  assert.equal(term.exitCode, 0, out);
  assert.match(out, new RegExp(`left ${taken.slug}: it is live now \\(owner pid ${flow.pid} alive\\), not the orphan it was when the plan was made`));
  assert.deepEqual(await resourcesOf(run, taken.slug), resumed);
  assert.equal((await runProcess(["docker", "inspect", "--format", "{{.State.Running}}", names.bundle(taken.slug)])).stdout.trim(), "true");
  assert.ok(existsSync(join(taken.dir, "plan.json")));
  // The rest of the plan went.
  assert.deepEqual(await resourcesOf(run, dead.slug), []);
  assert.ok(!existsSync(dead.dir));
});

test("bb-cleanup walks smolvm too: a dead smolmachines bottle's machine goes with its bundle; other machines stay", async (t) => {
  const run = await testRun(t);
  const smolvm = await fakeSmolvm(t);
  const dead = await makeBottle(t, run, { name: "smol", backend: "smolmachines", owner: "dead", bundle: true });
  await smolvm.createMachine(names.machine(dead.slug));
  await smolvm.createMachine("someone-elses-vm");

  const listed = await run.tool("bb-list", ["--all", "--json"], { env: smolvm.env });
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(
    (listed.json() as ListRow[]).map((r) => [r.slug, r.backend, r.status, r.machines]),
    [[dead.slug, "smolmachines", "orphan", [{ name: names.machine(dead.slug), state: "stopped" }]]],
  );

  const r = await run.tool("bb-cleanup", ["--yes", "--json"], { env: smolvm.env });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    (r.json() as Report).results!.map((x) => [x.kind, x.name, x.ok]),
    [
      ["machine", names.machine(dead.slug), true],
      ["container", names.bundle(dead.slug), true],
      ["network", names.egressNet(dead.slug), true],
      ["state dir", dead.dir, true],
    ],
  );
  const deletes = (await smolvm.calls()).filter((argv) => argv[1] === "delete");
  assert.deepEqual(deletes, [["machine", "delete", "--name", names.machine(dead.slug), "-f"]]);
  const left = await runProcess(["smolvm", "machine", "ls", "--json"], { env: smolvm.env });
  assert.deepEqual((JSON.parse(left.stdout) as { name: string }[]).map((m) => m.name), ["someone-elses-vm"]);
  assert.deepEqual(await resourcesOf(run, dead.slug), []);
});

test("bb-cleanup of another state root (sudo, another BB_STATE_DIR) leaves this root's bottles alone, stopped or not, and --slug names the root that removes one", async (t) => {
  const run = await testRun(t);
  // The start flow died: a dead owner and a stopped bundle, an orphan to its own root.
  const dead = await makeBottle(t, run, { name: "dead", owner: "dead", bundle: true, networks: true, old: true });
  await runProcess(["docker", "stop", "-t", "0", names.bundle(dead.slug)]);
  const other = await tempDir(t, "bb-other-root-");
  const scope = ["--filter-label", `${RUN_LABEL}=${run.id}`];
  const there = await runTool("bb-cleanup", ["--yes", "--grace", "0", "--json", "--state-dir", other, ...scope]);
  assert.equal(there.code, 0, there.stderr);
  const report = there.json() as Report;
  assert.deepEqual(report.plan, []);
  assert.deepEqual(report.kept.map((k) => [k.slug, k.why]), [[dead.slug, `a bottle of state root ${run.stateRoot} (bb-list and bb-cleanup judge it with --state-dir ${run.stateRoot})`]]);
  assert.equal((await resourcesOf(run, dead.slug)).length, 3, "another root's cleanup removed this root's bottle");
  const listed = await runTool("bb-list", ["--json", "--state-dir", other, ...scope]);
  assert.deepEqual((listed.json() as ListRow[]).map((r) => [r.slug, r.status, r.otherStateRoot]), [[dead.slug, "elsewhere", run.stateRoot]]);
  const bySlug = await runTool("bb-cleanup", ["--slug", dead.slug, "--yes", "--state-dir", other, ...scope]);
  assert.equal(bySlug.code, 2, bySlug.stderr);
  assert.match(bySlug.stderr, new RegExp(`Bottle ${dead.slug} belongs to state root ${run.stateRoot}: .bb-cleanup --state-dir ${run.stateRoot} --slug ${dead.slug}. removes it`));
  assert.equal((await resourcesOf(run, dead.slug)).length, 3);
  // That root's own state dir of the slug (a start whose bb-bundle stopped at SLUG_TAKEN) is
  // a bottle of its own there: listed apart, and its --slug teardown removes that dir alone.
  const ownDir = join(other, "bottles", dead.slug);
  await mkdir(ownDir, { recursive: true });
  const both = await runTool("bb-list", ["--json", "--all", "--state-dir", other, ...scope]);
  assert.deepEqual((both.json() as ListRow[]).map((r) => [r.slug, r.stateDir, r.otherStateRoot, r.containers.length]), [
    [dead.slug, ownDir, null, 0],
    [dead.slug, null, run.stateRoot, 1],
  ]);
  const teardown = await runTool("bb-cleanup", ["--slug", dead.slug, "--yes", "--json", "--state-dir", other, ...scope]);
  assert.equal(teardown.code, 0, teardown.stderr);
  assert.deepEqual((teardown.json() as Report).results!.map((x) => [x.kind, x.name, x.ok]), [["state dir", ownDir, true]]);
  assert.ok(!existsSync(ownDir));
  assert.equal((await resourcesOf(run, dead.slug)).length, 3, "the teardown of this root's dir removed the other root's bottle");
  // Its own root's cleanup judges it, and removes it, whatever path leads to that root.
  const link = join(other, "link");
  await symlink(run.stateRoot, link);
  const viaLink = await runTool("bb-list", ["--json", "--all", "--state-dir", link, ...scope]);
  assert.deepEqual((viaLink.json() as ListRow[]).map((r) => [r.slug, r.status]), [[dead.slug, "orphan"]]);
  const own = await run.tool("bb-cleanup", ["--yes", "--grace", "0"]);
  assert.equal(own.code, 0, own.stderr);
  assert.deepEqual(await resourcesOf(run, dead.slug), []);
  assert.ok(!existsSync(dead.dir));
});

test("a smolvm on PATH that cannot be asked stops no docker bottle's cleanup: smolmachines bottles are kept, and their --slug teardown refused", async (t) => {
  const run = await testRun(t);
  const smolvm = await fakeSmolvm(t);
  // Installed but unanswerable: a release the stand-in does not know fails every call.
  const env = { ...smolvm.env, FAKE_SMOLVM_VERSION: "0.1.0" };
  const dockerDead = await makeBottle(t, run, { name: "dock", owner: "dead", bundle: true, networks: true, old: true });
  const smolDead = await makeBottle(t, run, { name: "smol", backend: "smolmachines", owner: "dead", bundle: true, old: true });

  const r = await run.tool("bb-cleanup", ["--yes", "--json"], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^bb-cleanup: warning: smolmachines: .*: smolmachines bottles are left as they are, the rest is judged as usual/m);
  const report = r.json() as Report;
  assert.deepEqual(report.plan.map((p) => p.slug), [dockerDead.slug]);
  assert.deepEqual(report.kept.map((k) => k.slug), [smolDead.slug]);
  assert.match(report.kept[0]!.why, /^a smolmachines bottle, and smolvm could not be asked whether its machine runs/);
  assert.deepEqual(await resourcesOf(run, dockerDead.slug), []);
  assert.ok(!existsSync(dockerDead.dir));

  const bySlug = await run.tool("bb-cleanup", ["--slug", smolDead.slug, "--yes"], { env });
  assert.equal(bySlug.code, 1, bySlug.stderr);
  assert.match(bySlug.stderr, /Cannot tell which bottles are live, so nothing was removed:\n {2}smolmachines: /);
  assert.deepEqual(await resourcesOf(run, smolDead.slug), [names.bundle(smolDead.slug), names.egressNet(smolDead.slug)].sort());
  assert.ok(existsSync(smolDead.dir));
  // Once smolvm answers, it goes like any orphan.
  const fixed = await run.tool("bb-cleanup", ["--slug", smolDead.slug, "--yes"], { env: smolvm.env });
  assert.equal(fixed.code, 0, fixed.stderr);
  assert.deepEqual(await resourcesOf(run, smolDead.slug), []);
});

test("bb-cleanup gives up on removals a Docker engine never answers: those under way fail after BB_DOCKER_TIMEOUT naming the call, later ones are not asked, and a later run removes what is left", async (t) => {
  const run = await testRun(t);
  const b = await makeBottle(t, run, { name: "hung", owner: "dead", bundle: true, agent: true, networks: true });
  const all = await resourcesOf(run, b.slug);
  assert.equal(all.length, 4);
  // The real engine behind a socket that answers everything but a removal (DELETE).
  const engine = await hangingEngine(t, { via: realEngineSocket(), hangOn: /^DELETE / });
  const r = await run.tool("bb-cleanup", ["--slug", b.slug, "--yes", "--json"], { env: { DOCKER_HOST: engine.host, BB_DOCKER_TIMEOUT: "1" } });
  assert.equal(r.code, 1, r.stderr);
  const report = r.json() as Report;
  const failed = report.results!.filter((x) => !x.ok);
  assert.deepEqual(failed.map((x) => x.name).sort(), [...all, b.dir].sort());
  // The containers go first, together (by the ID the scan found): each waits out the limit.
  // The networks come after, and are not asked of an engine that already left a call unanswered.
  const ids = new Map(report.plan[0]!.containers.map((c) => [c.name, c.id]));
  for (const x of failed.filter((x) => x.kind === "container")) {
    assert.ok(x.error!.includes(`the Docker engine did not answer \`docker rm --force --volumes ${ids.get(x.name)}\` within 1 s`), x.error);
  }
  for (const x of failed.filter((x) => x.kind === "network")) {
    assert.match(x.error!, /not asked: the Docker engine did not answer `docker rm --force --volumes [0-9a-f]{64}` within 1 s/);
  }
  assert.match(r.stderr, /5 of 5 removal\(s\) failed \(see above\); run bb-cleanup again/);
  assert.ok(existsSync(b.dir));
  assert.deepEqual(engine.held.map((l) => l.split(" ")[0]), ["DELETE", "DELETE"], engine.held.join("\n"));
  assert.deepEqual(await resourcesOf(run, b.slug), all, "the engine never got the removals");
  // The CLIs were killed, not left waiting: their connections close.
  assert.equal(await engine.clientsClosed(), 0);

  // A plain cleanup, as the error says: the owner record left in the state dir makes
  // the rest a dead flow's leftovers, its running agent container notwithstanding.
  const again = await run.tool("bb-cleanup", ["--yes"]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(await resourcesOf(run, b.slug), []);
  assert.ok(!existsSync(b.dir));
});
