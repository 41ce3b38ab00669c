// bb-vm exec and attach against a real Docker engine, whose container names are one
// namespace for every state root: a plan reaches the agent container bb-vm started for it,
// or none, never another root's bottle that has taken the name since.
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test, type TestContext } from "node:test";
import * as docker from "../../lib/docker/index.ts";
import { makeBottle, RUN_LABEL, testRun } from "../../lib/inventory/testdata/bottles.ts";
import { names } from "../../lib/layout.ts";
import { readPlanFile, savePlan } from "../../lib/plan/io.ts";
import type { Plan } from "../../lib/plan/schema.ts";
import { prepare } from "../../lib/prepare/prepare.ts";
import { run, start, which, ANY_EXIT } from "../../lib/proc.ts";
import { hangingEngine, realEngineSocket } from "../../tests/support/hanging-engine.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { REPO, runTool } from "../../tests/support/tools.ts";

/** A bottle of this run whose agent (a sleeper, as root only: debian has no user node) is
 * recorded in its plan as bb-vm records it. */
async function agentBottle(t: TestContext, name: string) {
  const root = await testRun(t);
  const bottle = await makeBottle(t, root, { name, agent: true });
  const agent = names.agent(bottle.slug);
  const plan = await readPlanFile(join(bottle.dir, "plan.json"));
  const id = (await docker.inspectContainer(agent))!.id;
  await savePlan({ ...plan, vm: { kind: "docker", image: "debian:bookworm-slim", imageId: null, name: agent, id, artifact: null, user: "node", home: "/home/node", env: {}, startedAt: plan.createdAt } });
  return { root, bottle, agent, id };
}

/** A bottle of a run of its own with its networks made and a bundle section as bb-bundle
 * writes it (network IDs included), ready for bb-vm to start its agent. */
async function bundledBottle(t: TestContext, name: string) {
  const root = await testRun(t);
  const bottle = await makeBottle(t, root, { name, networks: true });
  const internal = names.internalNet(bottle.slug);
  const egress = names.egressNet(bottle.slug);
  const ids = Object.fromEntries((await docker.listNetworks({ [RUN_LABEL]: root.id })).map((n) => [n.name, n.id]));
  const prepared = await readPlanFile(join(bottle.dir, "plan.json"));
  const bundle = {
    container: names.bundle(bottle.slug), image: "i", networks: { internal, egress }, networkIds: { internal: ids[internal]!, egress: ids[egress]! },
    caCert: join(bottle.dir, "ca.pem"), agentUrls: { proxy: "http://firewall:8888", gitGate: null, supervise: null }, hostPorts: null, loopbackAddr: null, startedAt: prepared.createdAt,
  };
  return { root, bottle, internal, ids, prepared, bundle };
}

/** Whether `file` exists in the container (by id or name). */
const hasFile = async (container: string, file: string) => (await run(["docker", "exec", container, "test", "-e", file], { expect: ANY_EXIT })).code === 0;

test("a plan whose agent container was removed never reaches another root's bottle that took the name: exec and attach say it is gone, or (a plan without the id) name that root", async (t) => {
  const rootA = await testRun(t);
  const rootB = await tempDir(t, "bb-vm-root-b-");
  const slug = `t${rootA.id}-x`;
  const agent = names.agent(slug);
  // Root B's bottle first, its agent a sleeper started and recorded as bb-vm does (debian
  // has no user node, so every exec here is --root).
  const prepared = await prepare({ agent: "researcher", manifestDir: join(REPO, "bottles"), stateRoot: rootB, backend: "docker", cwd: null, identity: slug });
  const idB = await docker.runContainer({
    name: agent,
    image: "debian:bookworm-slim",
    labels: docker.bottleLabels({ slug, backend: "docker", agent: "researcher", stateRoot: rootB, role: "agent", extra: { [docker.LABEL.test]: "1", [RUN_LABEL]: rootA.id } }),
    network: "none",
    init: true,
    entrypoint: "sleep",
    cmd: ["infinity"],
  });
  const vm = { kind: "docker" as const, image: "debian:bookworm-slim", imageId: null, name: agent, id: idB, artifact: null, user: "node", home: "/home/node", env: {}, startedAt: prepared.createdAt };
  const withId: Plan = { ...prepared, vm };
  const { id: _, ...withoutId } = vm;
  const saveWithId = () => savePlan(withId);
  // As a version that did not record the id saved it.
  const saveWithoutId = () => writeFile(prepared.files.plan, JSON.stringify({ ...prepared, vm: withoutId }));
  const markFrom = (file: string, flags: string[] = []) => runTool("bb-vm", ["exec", "--root", "--slug", slug, "--state-dir", rootB, ...flags, "--", "sh", "-c", `echo B > ${file}`]);
  const attach = () => runTool("bb-vm", ["attach", "--slug", slug, "--state-dir", rootB]);

  // While it lives, both plans reach it: by its id, or by its name once its labels say it is this root's.
  await saveWithId();
  assert.equal((await markFrom("/tmp/by-id")).code, 0);
  await saveWithoutId();
  assert.equal((await markFrom("/tmp/by-name")).code, 0);
  assert.ok((await hasFile(idB, "/tmp/by-id")) && (await hasFile(idB, "/tmp/by-name")), "root B's exec did not run in root B's container");

  // Then it is removed (a reboot and a prune, a `docker rm`) and root A's bottle X takes the name.
  await docker.removeContainer(idB);
  await makeBottle(t, rootA, { name: "x", agent: true });
  const idA = (await docker.inspectContainer(agent))!.id;

  await saveWithId();
  const gone = new RegExp(`^bb-vm: error: bottle ${slug}: its agent container ${agent} is gone; .just start slug=${slug}. rebuilds it`, "m");
  // 125, as docker run's: the bottle could not run the command, which a script can tell
  // from the command's own exit 1; with --json-errors, the error object too.
  const exec = await markFrom("/tmp/from-b", ["--json-errors"]);
  assert.equal(exec.code, 125, exec.stderr);
  assert.match(exec.stderr, gone);
  const goneJson = JSON.parse(exec.stderr.trim().split("\n").at(-1)!).error;
  assert.deepEqual([goneJson.code, goneJson.exitCode, goneJson.details], ["VM", 125, { slug, container: agent }]);
  const attached = await attach();
  assert.equal(attached.code, 125, attached.stderr);
  assert.match(attached.stderr, gone);

  await saveWithoutId();
  const taken = new RegExp(`^bb-vm: error: Cannot reach bottle ${slug}'s agent: container ${agent} is a bottle of state root ${rootA.stateRoot}, not of this one .*BB_STATE_DIR=${rootA.stateRoot}\\)$`, "m");
  const execOld = await markFrom("/tmp/from-b-old");
  assert.equal(execOld.code, 1, execOld.stderr);
  assert.match(execOld.stderr, taken);
  const json = await markFrom("/tmp/from-b-old", ["--json-errors"]);
  const error = JSON.parse(json.stderr.trim().split("\n").at(-1)!).error;
  assert.deepEqual([error.code, error.details], ["SLUG_TAKEN", { slug, stateRoot: rootA.stateRoot }]);
  const attachOld = await attach();
  assert.equal(attachOld.code, 1, attachOld.stderr);
  assert.match(attachOld.stderr, taken);

  assert.equal((await docker.inspectContainer(agent))?.id, idA);
  assert.ok(!(await hasFile(idA, "/tmp/from-b")) && !(await hasFile(idA, "/tmp/from-b-old")), "root B's exec ran in root A's bottle");
});

test("a command killed inside a running agent (exit 137) is its own exit: bb-vm asks docker once whether the container runs, says nothing more, and does not wait", async (t) => {
  const { root, bottle } = await agentBottle(t, "k");

  // kill -9 of the command itself (as the OOM killer does) ends it with 137, as `docker rm -f`
  // does; only the latter's container stops, which the probe tells apart at once.
  const r = await runTool("bb-vm", ["-v", "exec", "--root", "--slug", bottle.slug, "--state-dir", root.stateRoot, "--", "sh", "-c", "kill -9 $$"]);
  assert.equal(r.code, 137, r.stderr);
  assert.doesNotMatch(r.stderr, /^(bb-vm: )?error:/m);
  const inspects = r.stderr.split("\n").filter((l) => /run: docker container inspect /.test(l));
  assert.equal(inspects.length, 1, `bb-vm looked at the container ${inspects.length} times, polling a container that runs:\n${r.stderr}`);
});

test("bb-vm on the plan bb-bundle just wrote joins the internal network by its ID and asks docker nothing first; a plan without the IDs asks whether the slug is another root's", async (t) => {
  const { bottle, internal, ids, prepared, bundle } = await bundledBottle(t, "ids");
  const agent = names.agent(bottle.slug);
  // Removed before testRun's own cleanup (an after-hook) takes the network.
  const remove = () => run(["docker", "rm", "-f", agent], { expect: ANY_EXIT });
  // What bb-vm asks docker before it starts the agent (aside from the image lookups and the
  // engine's version, which run alongside).
  const before = async (plan: Plan) => {
    const r = await runTool("bb-vm", ["-v"], { input: JSON.stringify(plan), env: { BB_TEST_LABEL: "1" } });
    assert.equal(r.code, 0, r.stderr);
    const calls = r.stderr.split("\n").filter((l) => /run: docker /.test(l) && !/docker (image|build|version) /.test(l));
    const runAt = calls.findIndex((l) => /run: docker run /.test(l));
    assert.ok(runAt >= 0, r.stderr);
    return { calls: calls.slice(0, runAt), run: calls[runAt]! };
  };

  try {
    const fresh = await before({ ...prepared, bundle });
    assert.deepEqual(fresh.calls, [], "bb-vm asked docker something a fresh bb-bundle plan answers");
    assert.match(fresh.run, new RegExp(` --network ${ids[internal]} `));
    assert.deepEqual(Object.values((await docker.inspectContainer(agent))!.networks).map((n) => n.id), [ids[internal]]);

    await remove();
    const old = await before({ ...prepared, bundle: { ...bundle, networkIds: null } });
    assert.ok(old.calls.some((l) => /docker ps /.test(l)) && old.calls.some((l) => /docker network ls /.test(l)), old.calls.join("\n"));
    assert.match(old.run, new RegExp(` --network ${internal} `));

    // An ID whose network was removed since (a prune) is named as the bottle's network.
    await remove();
    const pruned = await runTool("bb-vm", [], { input: JSON.stringify({ ...prepared, bundle: { ...bundle, networkIds: { internal: "0".repeat(64), egress: "1".repeat(64) } } }), env: { BB_TEST_LABEL: "1" } });
    assert.equal(pruned.code, 1, pruned.stderr);
    assert.match(pruned.stderr, new RegExp(`^bb-vm: error: Cannot start the agent: bottle ${bottle.slug}'s internal network ${internal} \\(ID 000000000000\\) is gone since bb-bundle made it .*bb-cleanup --slug ${bottle.slug} removes the rest`, "m"));
    assert.equal(await docker.inspectContainer(agent), null, "the agent container that could not start was left");
  } finally {
    await remove();
  }
});

test("bb-vm exec --root runs in root's environment: none of the bottle's declared names, the image's PATH, no preloaded library; the agent keeps them", async (t) => {
  const root = await testRun(t);
  const slug = `t${root.id}-env`;
  const prepared = await prepare({ agent: "researcher", manifestDir: join(REPO, "bottles"), stateRoot: root.stateRoot, backend: "docker", cwd: null, identity: slug });
  // What a manifest from a shared repo could have declared, before such names were refused
  // at prepare: a PATH and a preload into folders the agent writes, and tar's options.
  const declared = { PATH: "/tmp/evil:/usr/bin:/bin", LD_PRELOAD: "/tmp/evil/x.so", TAR_OPTIONS: "--to-command=/tmp/evil/id", BOTTLE_DECLARED: "yes" };
  const plan: Plan = { ...prepared, bottle: { ...prepared.bottle, env: declared } };
  const id = await docker.runContainer({
    name: names.agent(slug),
    image: "debian:bookworm-slim",
    labels: docker.bottleLabels({ slug, backend: "docker", agent: "researcher", stateRoot: root.stateRoot, role: "agent", extra: { [docker.LABEL.test]: "1", [RUN_LABEL]: root.id } }),
    network: "none",
    env: declared,
    entrypoint: "/bin/sleep",
    cmd: ["infinity"],
  });
  await savePlan({ ...plan, vm: { kind: "docker", image: "debian:bookworm-slim", imageId: null, name: names.agent(slug), id, artifact: null, user: "node", home: "/home/node", env: declared, startedAt: plan.createdAt } });
  // A program of the agent's making, named as one root's commands call.
  await run(["docker", "exec", "-u", "0", id, "/bin/sh", "-c", "mkdir -p /tmp/evil && printf '#!/bin/sh\\necho owned > /tmp/owned\\n' > /tmp/evil/id && chmod +x /tmp/evil/id"]);
  const control = await run(["docker", "exec", "-u", "0", id, "sh", "-c", "id -u"], { expect: ANY_EXIT });
  assert.ok(await hasFile(id, "/tmp/owned"), `control: a plain root exec runs the bottle's PATH (${control.stderr})`);
  await run(["docker", "exec", "-u", "0", id, "rm", "/tmp/owned"]);

  const r = await runTool("bb-vm", ["exec", "--root", "--slug", slug, "--state-dir", root.stateRoot, "--", "sh", "-c", "id -u; env"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^0$/m);
  assert.match(r.stdout, /^PATH=\/usr\/local\/sbin:\/usr\/local\/bin:\/usr\/sbin:\/usr\/bin:\/sbin:\/bin$/m);
  assert.match(r.stdout, /^HOME=\/root$/m);
  assert.doesNotMatch(r.stdout, /BOTTLE_DECLARED|TAR_OPTIONS|\/tmp\/evil/);
  assert.doesNotMatch(r.stderr, /LD_PRELOAD|x\.so/, "the loader tried the declared preload");
  assert.equal(await hasFile(id, "/tmp/owned"), false, "root ran the bottle's program");
  const agent = await run(["docker", "exec", id, "sh", "-c", "env"]);
  assert.match(agent.stdout, /^BOTTLE_DECLARED=yes$/m, "control: the agent's own commands keep what the bottle declared");
});

test("bb-vm exec and attach on a paused, stopped or removed agent say so in one line of their own, none of docker's; a command's own stderr passes byte for byte, with its exit code", async (t) => {
  const { root, bottle, agent, id } = await agentBottle(t, "raw");
  const where = ["--slug", bottle.slug, "--state-dir", root.stateRoot];
  const exec = (script: string) => runTool("bb-vm", ["exec", "--root", ...where, "--", "sh", "-c", script]);

  // What the command writes, even in docker's words, even a line cut short, is its own.
  const own = await exec("printf 'Error response from daemon: No such container: x\\n' >&2; printf '\\377partial' >&2; exit 1");
  assert.equal(own.code, 1, own.stderr);
  assert.equal(own.stderr, "Error response from daemon: No such container: x\n\uFFFDpartial");
  const bytes = await run(["sh", "-c", `${join(REPO, "bin", "bb-vm")} exec --root ${where.join(" ")} -- sh -c "printf 'Err\\377' >&2; exit 7" 2>&1 | od -An -tx1`], { env: { BB_FROM_SOURCE: "1" }, expect: ANY_EXIT });
  assert.equal(bytes.stdout.trim(), "45 72 72 ff", "the command's stderr did not pass byte for byte");
  const ok = await exec("echo out; echo err >&2; exit 3");
  assert.deepEqual([ok.code, ok.stdout, ok.stderr], [3, "out\n", "err\n"]);

  const onlyOurs = (r: { code: number; stderr: string }, state: RegExp) => {
    assert.equal(r.code, 125, r.stderr);
    const lines = r.stderr.split("\n").filter((l) => l && !/^bb-vm: warning: attach: no terminal/.test(l));
    assert.equal(lines.length, 1, `not one line:\n${r.stderr}`);
    assert.match(lines[0]!, new RegExp(`^bb-vm: error: bottle ${bottle.slug}: its agent container ${agent} `));
    assert.match(lines[0]!, state);
  };
  await run(["docker", "pause", id]);
  try {
    onlyOurs(await exec("true"), new RegExp(`is paused .*docker unpause ${agent}. resumes it$`));
  } finally {
    await run(["docker", "unpause", id]);
  }
  await run(["docker", "stop", "-t", "0", id]);
  const rebuild = new RegExp(`; .just start slug=${bottle.slug}. rebuilds it`);
  onlyOurs(await exec("true"), /is stopped/);
  onlyOurs(await exec("true"), rebuild);
  onlyOurs(await runTool("bb-vm", ["attach", ...where]), /is stopped/);
  await run(["docker", "rm", "-f", id]);
  onlyOurs(await exec("true"), /is gone/);
  onlyOurs(await runTool("bb-vm", ["attach", ...where]), /is gone/);
  // docker's own words are there for whoever asks (-v).
  assert.match((await runTool("bb-vm", ["-v", "exec", "--root", ...where, "--", "true"])).stderr, /docker exec said: Error response from daemon: No such container/);
});

test("bb-vm exec and attach on an engine that stops answering end in one line naming the bottle (124 hung, 125 down), and leave no docker exec waiting; a command that runs past the engine check keeps its exit code", async (t) => {
  const { root, bottle } = await agentBottle(t, "hung");
  const where = ["--slug", bottle.slug, "--state-dir", root.stateRoot];
  const slow = await runTool("bb-vm", ["exec", "--root", ...where, "--", "sh", "-c", "sleep 1.5; echo late >&2; exit 4"]);
  assert.deepEqual([slow.code, slow.stderr], [4, "late\n"]);

  const hung = await hangingEngine(t);
  for (const argv of [["exec", "--root", ...where, "--", "true"], ["attach", ...where]]) {
    const began = Date.now();
    const r = await runTool("bb-vm", argv, { env: { DOCKER_HOST: hung.host, BB_DOCKER_TIMEOUT: "1" } });
    assert.equal(r.code, 124, r.stderr);
    const lines = r.stderr.split("\n").filter((l) => l && !/^bb-vm: warning: attach: no terminal/.test(l));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`^bb-vm: error: Cannot run \\S+ in bottle ${bottle.slug}: the Docker engine did not answer .docker info.* within 1 s\\. Is it hung\\?`));
    assert.ok(Date.now() - began < 20_000, `took ${Date.now() - began} ms`);
  }
  assert.equal(await hung.clientsClosed(), 0, "a docker exec still waits on the hung engine");

  const down = await runTool("bb-vm", ["exec", "--root", ...where, "--", "true"], { env: { DOCKER_HOST: `unix://${join(root.stateRoot, "no-engine.sock")}` } });
  assert.equal(down.code, 125, down.stderr);
  assert.match(down.stderr, /^bb-vm: error: Cannot reach the Docker engine \(/);
  assert.doesNotMatch(down.stderr, /^(error during connect|Cannot connect to the Docker daemon|Error response from daemon)/m);
});

test("bb-vm exec into a bottle whose checkout folder was removed inside it says so in one line and how to make it again (exit 125), not only docker's OCI runtime error and 126", async (t) => {
  const { root, bottle, agent, id } = await agentBottle(t, "nowork");
  const plan = await readPlanFile(join(bottle.dir, "plan.json"));
  await savePlan({ ...plan, cwd: root.stateRoot });
  const exec = () => runTool("bb-vm", ["exec", "--root", "--slug", bottle.slug, "--state-dir", root.stateRoot, "--", "pwd"]);
  const r = await exec();
  assert.equal(r.code, 125, JSON.stringify(r.stderr));
  // docker's own line, which it writes on the command's stdout, is said in bb-vm's words
  // instead, on stderr; docker's is there for whoever asks (-v).
  assert.equal(r.stdout, "");
  assert.match((await runTool("bb-vm", ["-v", "exec", "--root", "--slug", bottle.slug, "--state-dir", root.stateRoot, "--", "pwd"])).stderr, /docker exec said: OCI runtime exec failed: .*chdir to cwd/);
  assert.equal(r.stderr, `bb-vm: error: bottle ${bottle.slug}: /home/node/work, where commands start, is gone from its agent container (removed inside the bottle), so docker could not start the command there; \`docker exec -u node ${agent} mkdir -p /home/node/work\` makes it again\n`);
  await run(["docker", "exec", id, "mkdir", "-p", "/home/node/work"]);
  const again = await exec();
  assert.deepEqual([again.code, again.stdout], [0, "/home/node/work\n"], again.stderr);
});

test("bb-vm on an engine that stops answering as it starts the agent says so in one short line (124) and leaves no container", async (t) => {
  const { bottle, prepared, bundle } = await bundledBottle(t, "norun");
  const engine = await hangingEngine(t, { via: realEngineSocket(), hangOn: /^POST \S+\/containers\/create/ });
  const r = await runTool("bb-vm", [], { input: JSON.stringify({ ...prepared, bundle }), env: { BB_TEST_LABEL: "1", DOCKER_HOST: engine.host, BB_DOCKER_TIMEOUT: "2" } });
  assert.equal(r.code, 124, r.stderr);
  assert.equal(engine.held.length, 1, engine.held.join("\n"));
  const agent = names.agent(bottle.slug);
  const error = r.stderr.split("\n").filter((l) => l.startsWith("bb-vm: error:"));
  assert.equal(error.length, 1, r.stderr);
  assert.match(error[0]!, new RegExp(`^bb-vm: error: Cannot start container ${agent}: the Docker engine did not answer \`docker run --detach --name ${agent} \\.\\.\\. bot-bottle/agent:\\w+\` within 2 s\\. Is it hung\\?`));
  assert.ok(error[0]!.length < 300, `${error[0]!.length} characters`);
  assert.equal(r.stdout, "");
  assert.equal(await docker.inspectContainer(agent), null);
});

test("bb-vm on an engine that creates the agent container and never starts it (docker run hangs at the start) ends in one line (124) and removes the created container", async (t) => {
  const { bottle, prepared, bundle } = await bundledBottle(t, "nostart");
  const agent = names.agent(bottle.slug);
  // bb-vm's container carries no run label for testRun's cleanup to find.
  t.after(() => run(["docker", "rm", "-f", agent], { expect: ANY_EXIT }));
  const engine = await hangingEngine(t, { via: realEngineSocket(), hangOn: /^POST \S+\/containers\/[^/\s]+\/start/ });
  const r = await runTool("bb-vm", [], { input: JSON.stringify({ ...prepared, bundle }), env: { BB_TEST_LABEL: "1", DOCKER_HOST: engine.host, BB_DOCKER_TIMEOUT: "2" } });
  assert.equal(r.code, 124, r.stderr);
  assert.equal(engine.held.length, 1, engine.held.join("\n"));
  const error = r.stderr.split("\n").filter((l) => l.startsWith("bb-vm: error:"));
  assert.equal(error.length, 1, r.stderr);
  assert.match(error[0]!, new RegExp(`^bb-vm: error: Cannot start container ${agent}: the Docker engine did not answer \`docker run --detach --name ${agent} `));
  assert.equal(r.stdout, "");
  const left = await docker.inspectContainer(agent);
  assert.equal(left, null, `the agent container docker created and never started was left (${left?.state.status})`);
  assert.equal(await engine.clientsClosed(), 0, "a docker CLI still waits on the engine");
});

/** The ids of the processes listed in `file` in the container that still run (not zombies). */
const stillRunning = async (container: string, file: string) =>
  (await run(["docker", "exec", container, "sh", "-c", 'for p in $(cat "$1"); do s=$(cut -d" " -f3 "/proc/$p/stat" 2>/dev/null) && [ "$s" != Z ] && echo "$p"; done; true', "sh", file])).stdout.split("\n").filter(Boolean);

const KILLED = [
  { how: "SIGKILL", signal: "SIGKILL" as const, root: true, tty: false },
  { how: "SIGTERM, as the agent user", signal: "SIGTERM" as const, root: false, tty: false },
  { how: "SIGKILL, with a terminal (-t)", signal: "SIGKILL" as const, root: true, tty: true },
];
for (const k of KILLED) {
  const noScript = k.tty && !(await which("script")) ? "no util-linux `script` here to give bb-vm a terminal" : false;
  test(`bb-vm exec killed with ${k.how} takes its docker exec client with it, and the command it ran in the container (and that command's children) stops too`, skipWhen(noScript, `bb-vm exec killed with ${k.how}`), async (t) => {
    const { root, bottle, id } = await agentBottle(t, `kill${KILLED.indexOf(k)}`);
    // The sleeper image has no user node of its own; the agent image has.
    if (!k.root) await run(["docker", "exec", id, "useradd", "-m", "node"]);
    const marker = `/tmp/running-${bottle.slug}`;
    const bbVm = [join(REPO, "bin", "bb-vm"), "exec", ...(k.root ? ["--root"] : []), ...(k.tty ? ["-t"] : []), "--slug", bottle.slug, "--state-dir", root.stateRoot, "--"];
    // The command and a child of its own: both must stop.
    const script = `sleep 600 & echo $$ $! > ${marker}.tmp; mv ${marker}.tmp ${marker}; wait`;
    // The docker CLIs on this machine running that command (the command itself, inside the
    // container, shows in ps too, but not as docker).
    const clients = async () => (await run(["ps", "-eo", "pid=,args="])).stdout.split("\n").filter((l) => /^\s*\d+ docker exec /.test(l) && l.includes(marker));
    // stdin a pipe this test holds open, as a caller's would be: the CLI never sees its end.
    // With a terminal, `script` runs bb-vm (exec'd by its shell) on a pseudo-terminal of its own.
    const child = k.tty
      ? start(["script", "-qec", `exec ${[...bbVm, "sh", "-c", script].map((a) => `'${a}'`).join(" ")}`, "/dev/null"], { env: { BB_FROM_SOURCE: "1" }, stdio: ["pipe", "ignore", "ignore"] })
      : start([...bbVm, "sh", "-c", script], { env: { BB_FROM_SOURCE: "1" }, stdio: ["pipe", "ignore", "ignore"] });
    t.after(async () => {
      child.kill("SIGKILL");
      for (const l of await clients()) process.kill(Number(l.trim().split(" ")[0]), "SIGKILL");
    });
    const began = Date.now();
    while (!(await hasFile(id, marker))) {
      assert.ok(Date.now() - began < 30_000, "the command never started");
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal((await clients()).length, 1, "control: the docker exec client is found while bb-vm runs");
    assert.equal((await stillRunning(id, marker)).length, 2, "control: the command and its child are found while bb-vm runs");
    const bbVmPid = k.tty ? Number((await run(["ps", "-o", "pid=", "--ppid", String(child.pid)])).stdout.trim()) : child.pid!;
    process.kill(bbVmPid, k.signal);
    let left = await clients();
    let inContainer = await stillRunning(id, marker);
    // Generous (the machine is shared, and only the end matters), yet well within the sleep.
    const killedAt = Date.now();
    while (Date.now() - killedAt < 60_000 && (left.length > 0 || inContainer.length > 0)) {
      await new Promise((r) => setTimeout(r, 100));
      [left, inContainer] = [await clients(), await stillRunning(id, marker)];
    }
    assert.deepEqual(left, [], "a docker exec client outlived the bb-vm that was killed");
    assert.deepEqual(inContainer, [], "the command bb-vm ran went on in the container after bb-vm was killed");
  });
}

test("bb-vm exec on an engine that answers everything but never starts the exec ends in one line naming the bottle (124) and leaves no docker exec waiting, even right after the same command ran", async (t) => {
  const { root, bottle } = await agentBottle(t, "noexec");
  const where = ["--slug", bottle.slug, "--state-dir", root.stateRoot];
  // The engine's version and the container's state answer, so the engine check passes.
  for (const hangOn of [/^POST \S+\/containers\/[^/\s]+\/exec$/, /^POST \S+\/exec\/[^/\s]+\/start$/]) {
    // The same command, started by the engine a moment ago: that start is not this one's.
    const before = await runTool("bb-vm", ["exec", "--root", ...where, "--", "true"]);
    assert.equal(before.code, 0, before.stderr);
    const engine = await hangingEngine(t, { via: realEngineSocket(), hangOn });
    const began = Date.now();
    // Bounded here: without a limit of its own, bb-vm waits forever.
    const r = await run([join(REPO, "bin", "bb-vm"), "exec", "--root", ...where, "--", "true"], { env: { BB_FROM_SOURCE: "1", DOCKER_HOST: engine.host, BB_DOCKER_TIMEOUT: "2" }, expect: ANY_EXIT, timeoutMs: 30_000 });
    assert.equal(engine.held.length, 1, engine.held.join("\n"));
    assert.equal(r.code, 124, r.stderr);
    const lines = r.stderr.split("\n").filter(Boolean);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`^bb-vm: error: Cannot run true in bottle ${bottle.slug}: the Docker engine answers, yet did not start the command within 2 s \\(.docker exec. waits on it\\)\\. Is it hung\\?`));
    assert.equal(r.stdout, "");
    assert.ok(Date.now() - began < 15_000, `took ${Date.now() - began} ms`);
    assert.equal(await engine.clientsClosed(), 0, "a docker exec still waits on the engine");
  }
});

test("bb-vm exec whose command docker cannot start (the OCI runtime's exec fails, 126) keeps docker's line off stdout: stdout carries the command's output only", async (t) => {
  const { root, bottle, id } = await agentBottle(t, "oci");
  const where = ["--slug", bottle.slug, "--state-dir", root.stateRoot];
  // Root's commands start with /usr/bin/env (rootExec): without it the runtime starts nothing.
  await run(["docker", "exec", id, "mv", "/usr/bin/env", "/usr/bin/env.gone"]);
  const r = await runTool("bb-vm", ["exec", "--root", ...where, "--", "true"]);
  assert.equal(r.code, 126, r.stderr);
  assert.equal(r.stdout, "", "docker's line reached stdout");
  assert.match(r.stderr, /^OCI runtime exec failed: .*\/usr\/bin\/env/m);
  await run(["docker", "exec", id, "mv", "/usr/bin/env.gone", "/usr/bin/env"]);
  // The command's own output, even in docker's words, stays on stdout.
  const own = await runTool("bb-vm", ["exec", "--root", ...where, "--", "sh", "-c", "echo 'OCI runtime exec failed: mine'; exit 126"]);
  assert.deepEqual([own.code, own.stdout, own.stderr], [126, "OCI runtime exec failed: mine\n", ""]);
  // A reader that goes away ends the command as it would without bb-vm between them.
  const piped = await run(["sh", "-c", `${join(REPO, "bin", "bb-vm")} exec --root ${where.join(" ")} -- yes | head -n 1`], { env: { BB_FROM_SOURCE: "1" }, expect: ANY_EXIT, timeoutMs: 30_000 });
  assert.deepEqual([piped.code, piped.stdout], [0, "y\n"], piped.stderr);
});

test("bb-vm attach whose session the engine never started writes why into --not-started-file; one that cannot be written adds a warning naming it, and the exit (125) and the reason stay the session's", async (t) => {
  const { root, bottle, agent } = await agentBottle(t, "nostart");
  const where = ["--slug", bottle.slug, "--state-dir", root.stateRoot];
  // The agent's exec refused: its session never starts, while the bottle runs on.
  const engine = await hangingEngine(t, { via: realEngineSocket(), refuse: { line: /^POST \/v[\d.]+\/containers\/[^/]+\/exec$/ } });
  const env = { DOCKER_HOST: engine.host };
  const reason = new RegExp(`^bb-vm: error: bottle ${bottle.slug}: the session in ${agent} did not start \\(docker exec exited \\d+, the engine never started it\\); the bottle runs on$`, "m");

  const file = join(root.stateRoot, "not-started");
  const told = await runTool("bb-vm", ["attach", ...where, "--not-started-file", file], { env });
  assert.equal(told.code, 125, told.stderr);
  assert.match(told.stderr, reason);
  assert.match(await readFile(file, "utf8"), /^bottle \S+: the session in \S+ did not start .*; the bottle runs on\n$/);

  const unwritable = join(root.stateRoot, "no-such-folder", "not-started");
  const r = await runTool("bb-vm", ["attach", ...where, "--not-started-file", unwritable], { env });
  assert.equal(r.code, 125, r.stderr);
  assert.match(r.stderr, reason);
  assert.match(r.stderr, new RegExp(`^bb-vm: warning: could not write --not-started-file ${unwritable}: ENOENT`, "m"));
  assert.equal(engine.held.length, 2, engine.held.join("\n"));
});
