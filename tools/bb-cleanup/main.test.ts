import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, utimes } from "node:fs/promises";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { which } from "../../lib/proc.ts";
import { hangingEngine } from "../../tests/support/hanging-engine.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { runTool } from "../../tests/support/tools.ts";

const noDocker = !(await which("docker")) && "docker CLI not installed";

test("bb-cleanup --help shows every flag and the exit-code table", async () => {
  const r = await runTool("bb-cleanup", ["--help"]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, "");
  for (const flag of ["--yes", "--dry-run", "--json", "--slug <slug>", "--state-dir <dir>", "--filter-label <key=value>", "--grace <seconds>", "--keep-state"]) {
    assert.ok(r.stderr.includes(flag), flag);
  }
  assert.match(r.stderr, /Exit codes:\n\s+0\s+ok\n\s+1\s+failure/);
  assert.match(r.stderr, /exit 2 also when\s+there is no terminal to ask on and no --yes/);
  assert.match(r.stderr, /Environment:\n\s+BB_DOCKER_TIMEOUT\s+seconds a docker call that should answer at once/);
});

test("bb-cleanup rejects a bad --slug, --grace or --filter-label, or --keep-state without --slug, with exit 2 before looking at anything", async () => {
  for (const args of [["--slug", "../etc"], ["--grace", "soon"], ["--filter-label", "novalue"], ["--keep-state"]]) {
    const r = await runTool("bb-cleanup", [...args, "--yes", "--state-dir", "/nonexistent/bb-state"]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(args[0]!));
    assert.equal(r.stdout, "");
  }
});

/** A state root holding one bottle's state dir, old enough to be judged dead. */
async function deadBottleDir(t: TestContext): Promise<{ state: string; dir: string }> {
  const state = await tempDir(t);
  const dir = join(state, "bottles", "gone-0001");
  await mkdir(dir, { recursive: true });
  const past = new Date(Date.now() - 3600_000);
  await utimes(dir, past, past);
  return { state, dir };
}

test("bb-cleanup refuses (exit 1, nothing removed) when an installed backend cannot be asked; bb-list lists the rest and exits 1", skipWhen(noDocker, "bb-cleanup with an engine out of reach"), async (t) => {
  const { state, dir } = await deadBottleDir(t);
  // The docker CLI is there but its engine is not: which bottles are live is unknown.
  const env = { DOCKER_HOST: "unix:///nonexistent/docker.sock" };
  const r = await runTool("bb-cleanup", ["--yes", "--state-dir", state], { env });
  assert.equal(r.code, 1, r.stderr);
  // One line for the engine, not docker's long complaint once per listing.
  assert.match(r.stderr, /Cannot tell which bottles are live, so nothing was removed:\n {2}docker: Cannot reach the Docker engine \(.*\/nonexistent\/docker\.sock.*\)\nStart the backend/);
  assert.ok(existsSync(dir));

  const list = await runTool("bb-list", ["--all", "--json", "--state-dir", state], { env });
  assert.equal(list.code, 1, list.stderr);
  assert.equal(list.stderr.match(/^bb-list: warning: docker: Cannot reach the Docker engine/gm)?.length, 1, list.stderr);
  assert.deepEqual((list.json() as { slug: string }[]).map((b) => b.slug), ["gone-0001"]);
});

test("bb-cleanup and bb-list give up on a Docker engine that takes the connection and never answers, within BB_DOCKER_TIMEOUT, and say so", skipWhen(noDocker, "bb-cleanup with a hung engine"), async (t) => {
  const { state, dir } = await deadBottleDir(t);
  const engine = await hangingEngine(t);
  const env = { DOCKER_HOST: engine.host, BB_DOCKER_TIMEOUT: "1" };
  // Without a limit the docker CLI waits forever here, and runTool's own 120 s limit throws.
  const r = await runTool("bb-cleanup", ["--yes", "--state-dir", state], { env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /Cannot tell which bottles are live, so nothing was removed:\n {2}docker: Cannot list (containers|networks): the Docker engine did not answer `docker (ps|network ls) .*` within 1 s\. Is it hung\?/);
  assert.ok(existsSync(dir), "nothing is removed while the engine cannot say what is live");

  const list = await runTool("bb-list", ["--all", "--json", "--state-dir", state], { env });
  assert.equal(list.code, 1, list.stderr);
  assert.match(list.stderr, /^bb-list: warning: docker: Cannot list (containers|networks): the Docker engine did not answer/m);
  assert.deepEqual((list.json() as { slug: string }[]).map((b) => b.slug), ["gone-0001"]);
  // The CLIs were killed, not left waiting: their connections close.
  assert.equal(await engine.clientsClosed(), 0);
});

test("a BB_DOCKER_TIMEOUT that is not a number of seconds is a usage error that names it, in every tool that talks to docker, and their --help lists it", async (t) => {
  const state = await tempDir(t);
  const calls: [string, string[]][] = [
    ["bb-cleanup", ["--yes", "--state-dir", state]],
    ["bb-list", ["--state-dir", state]],
    ["bb-bundle", ["--plan", "/nonexistent/plan.json"]],
    ["bb-vm", ["--plan", "/nonexistent/plan.json"]],
    ["bb-vm", ["exec", "--slug", "nope", "--state-dir", state, "--", "true"]],
    ["bb-vm", ["attach", "--slug", "nope", "--state-dir", state]],
    ["bb-provision", ["--plan", "/nonexistent/plan.json"]],
    ["bb-supervise", ["--plan", "/nonexistent/plan.json", "approve", "x"]],
  ];
  for (const [tool, args] of calls) {
    for (const bad of ["soon", "0", "-3"]) {
      const r = await runTool(tool, args, { env: { BB_DOCKER_TIMEOUT: bad, DOCKER_HOST: "unix:///nonexistent/docker.sock" } });
      assert.equal(r.code, 2, `${tool} ${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^${tool}: error: BB_DOCKER_TIMEOUT=${bad}: expected a number of seconds above 0`));
    }
  }
  for (const tool of new Set(calls.map(([tool]) => tool))) {
    assert.match((await runTool(tool, ["--help"])).stderr, /Environment:\n\s+BB_DOCKER_TIMEOUT\s+seconds a docker call that should answer at once/, tool);
  }
});
