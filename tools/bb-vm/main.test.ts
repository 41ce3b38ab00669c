// bb-vm's command line as a user types it: a real process, no docker reached (each case
// fails or finishes before the engine is needed).
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { ANY_EXIT, run, which } from "../../lib/proc.ts";
import type { Plan } from "../../lib/plan/schema.ts";
import { makeTestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { tsArgv } from "../../lib/supervise/testdata/ts-argv.ts";
import { skipWhen } from "../../tests/support/skip.ts";

const noDocker = !(await which("docker")) && "no docker CLI on PATH: the unreachable engine is met through it";

const tool = (name: string, args: string[]) => run(tsArgv(`tools/${name}/main.ts`, args), { expect: [0, 1, 2, 3, 4], input: "" });

/** The JSON object --json-errors prints (the last stderr line). */
function jsonError(stderr: string): { code: string; message: string } {
  return JSON.parse(stderr.trim().split("\n").at(-1)!).error;
}

test("a usage error after a subcommand exits 2, and --json-errors prints its object there too", async () => {
  const r = await tool("bb-vm", ["exec", "--bogus", "--json-errors", "--", "true"]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /unknown option '--bogus'/);
  assert.equal(jsonError(r.stderr).code, "USAGE");

  const missing = await tool("bb-supervise", ["--slug", "x", "answer", "1"]);
  assert.equal(missing.code, 2, missing.stderr);
});

test("a tool whose subcommand is missing shows its help and exits 2; `help CMD` exits 0", async () => {
  const bare = await tool("bb-supervise", []);
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /Commands:/);

  const help = await tool("bb-vm", ["help", "exec"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stderr, /Usage: bb-vm exec/);
});

test("-q, -v and --json-errors work after bb-vm's subcommand, and --plan before it is used", async () => {
  const b = await makeTestBottle({ bundle: {} });
  try {
    // No "unknown option '-q'": the flag is taken and the plan file is read.
    const quiet = await tool("bb-vm", ["exec", "-q", "--json-errors", "--plan", b.planFile, "--", "true"]);
    assert.equal(quiet.code, 3, quiet.stderr);
    assert.equal(jsonError(quiet.stderr).code, "PLAN_SECTION_MISSING");
    assert.match(quiet.stderr, /no "vm" section: run bb-vm first/);

    // `bb-vm --plan F exec`: the plan named before the subcommand is the one read, not stdin.
    const before = await tool("bb-vm", ["--plan", b.planFile, "exec", "--", "true"]);
    assert.equal(before.code, 3, before.stderr);
    assert.match(before.stderr, /no "vm" section/);
  } finally {
    await b.remove();
  }
});

test("bb-bundle, bb-vm and bb-provision refuse a plan their stage already ran on, before touching anything", async () => {
  const b = await makeTestBottle({ bundle: {} });
  try {
    const bundled = await tool("bb-bundle", ["--json-errors", "--plan", b.planFile]);
    assert.equal(bundled.code, 3, bundled.stderr);
    assert.equal(jsonError(bundled.stderr).code, "PLAN_SECTION_PRESENT");
    assert.match(bundled.stderr, /already has a "bundle" section: bb-bundle already ran for it/);

    const withVm: Plan = {
      ...b.plan,
      vm: { kind: "docker", image: "i", imageId: null, name: "bb-shell-t3st-agent", id: null, artifact: null, user: "node", home: "/home/node", env: {}, startedAt: "2026-01-01T00:00:02.000Z" },
    };
    const file = join(b.stateRoot, "vm-plan.json");
    await writeFile(file, JSON.stringify(withVm));
    const again = await tool("bb-vm", ["--plan", file]);
    assert.equal(again.code, 3, again.stderr);
    assert.match(again.stderr, /already has a "vm" section: bb-vm already ran for it\. Reach the running bottle with bb-vm exec\/attach --slug shell-t3st/);

    // Provisioning again would unpack the host checkout over the agent's ~/work.
    const provisioned = join(b.stateRoot, "provisioned-plan.json");
    await writeFile(provisioned, JSON.stringify({ ...withVm, provision: { steps: [], at: "2026-01-01T00:00:03.000Z" } }));
    const reprovision = await tool("bb-provision", ["--json-errors", "--plan", provisioned]);
    assert.equal(reprovision.code, 3, reprovision.stderr);
    assert.equal(jsonError(reprovision.stderr).code, "PLAN_SECTION_PRESENT");
    assert.match(reprovision.stderr, /already has a "provision" section: bb-provision already ran for it/);
  } finally {
    await b.remove();
  }
});

test("bb-bundle --upstream-ca naming no file is a usage error before anything is created", async () => {
  const r = await tool("bb-bundle", ["--upstream-ca", "/nonexistent/ca.pem"]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--upstream-ca \/nonexistent\/ca\.pem: no such readable file/);
});

test("bb-vm exec with the Docker engine out of reach says so as every tool does, and exits 125: the command never ran", skipWhen(noDocker, "bb-vm exec with the engine out of reach"), async (t) => {
  const b = await makeTestBottle({ bundle: {} });
  t.after(() => b.remove());
  const withVm: Plan = {
    ...b.plan,
    vm: { kind: "docker", image: "i", imageId: null, name: "bb-shell-t3st-agent", id: "0123456789ab", artifact: null, user: "node", home: "/home/node", env: {}, startedAt: "2026-01-01T00:00:02.000Z" },
  };
  const file = join(b.stateRoot, "vm-plan.json");
  await writeFile(file, JSON.stringify(withVm));
  const r = await run(tsArgv("tools/bb-vm/main.ts", ["exec", "--json-errors", "--plan", file, "--", "true"]), {
    expect: ANY_EXIT, input: "", env: { DOCKER_HOST: "unix:///nonexistent/bb-test-docker.sock" },
  });
  assert.equal(r.code, 125, r.stderr);
  assert.match(r.stderr, /^bb-vm: error: Cannot reach the Docker engine \(.*\)\.\nStart the Docker engine/m);
  assert.deepEqual([jsonError(r.stderr).code], ["DOCKER"]);
});

test("bb-vm exec --slug of a bottle not started that far says so, and how to start it (not which tool to run)", async (t) => {
  const b = await makeTestBottle({ bundle: {} });
  t.after(() => b.remove());
  const r = await tool("bb-vm", ["exec", "--slug", b.slug, "--state-dir", b.stateRoot, "--json-errors", "--", "true"]);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, new RegExp(`^bb-vm: error: Bottle ${b.slug} is not started \\(its plan .*plan\\.json has no "vm" section yet\\): .just start slug=${b.slug}. starts it$`, "m"));
  assert.deepEqual([jsonError(r.stderr).code], ["PLAN_SECTION_MISSING"]);
});
