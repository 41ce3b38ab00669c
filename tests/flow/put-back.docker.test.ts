// `just start slug=S` over a bottle that is not running, ended before the y: the folder
// goes back as it was, with a decision made at the y/N kept, and a flow killed there
// (SIGKILL: no teardown) is put back by the next start. Docker is asked only whether the
// bottle runs (it does not: these bottles were prepared and never started).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import type { TestContext } from "node:test";
import { labelArgs, testLabels } from "../../lib/docker/labels.ts";
import { readPlanFile, savePlan } from "../../lib/plan/io.ts";
import { run, start, ANY_EXIT } from "../../lib/proc.ts";
import { writeRequest } from "../../lib/supervise/queue.ts";
import { folderState } from "../support/folder-state.ts";
import { tempDir, writeTree } from "../support/tmp.ts";
import { REPO } from "../support/tools.ts";

const bin = (tool: string) => join(REPO, "bin", tool);
const justStart = (slug: string) => `${REPO}/node_modules/.bin/just --justfile ${REPO}/justfile start slug=${slug}`;

/** A bottle with supervise, prepared and never started; then its manifest changes, so a
 * rebuild rewrites every file. */
async function preparedBottle(t: TestContext, name: string) {
  const state = await tempDir(t, "bb-put-back-state-");
  const env = { BB_STATE_DIR: state, BB_TEST_LABEL: "1" };
  const m = await writeTree(await tempDir(t), {
    "agents/a.md": "---\nprovider: shell\nbottle: b\n---\nThe first prompt.\n",
    "b.md": "---\nsupervise: true\nallow_hosts: [a.example.test]\n---\n",
  });
  const slug = `${name}-${process.pid}`;
  const prepared = await run([bin("bb-prepare"), "a", "--identity", slug, "--manifest-dir", m, "--state-dir", state, "-q"], { env, expect: ANY_EXIT });
  assert.equal(prepared.code, 0, prepared.stderr);
  await writeTree(m, {
    "agents/a.md": "---\nprovider: shell\nbottle: b\n---\nA second prompt.\n",
    "b.md": "---\nsupervise: true\nallow_hosts: [b.example.test]\n---\n",
  });
  return { env, slug, dir: join(state, "bottles", slug) };
}

/** `just start slug=S` under a real terminal, stopped at its y/N. */
async function atTheQuestion(t: TestContext, slug: string, env: Record<string, string>) {
  const term = start(["script", "-qefc", justStart(slug), "/dev/null"], { env, stdio: ["pipe", "pipe", "ignore"] });
  t.after(() => void term.kill("SIGKILL"));
  let out = "";
  term.stdout!.on("data", (b: Buffer) => (out += b));
  const closed = new Promise((r) => term.on("close", r));
  for (let i = 0; i < 1200 && !out.includes("Start this bottle? [y/N]"); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(out, /Start this bottle\? \[y\/N\]/, "never asked");
  return { term, closed, output: () => out };
}

const hostsIn = async (dir: string) =>
  (JSON.parse(await readFile(join(dir, "firewall", "policy.json"), "utf8")).hosts as { host: string }[]).map((h) => h.host).sort();

/** The agent's pending request (req-1) for docs.example.test, in the bottle's queue. */
const askForDocs = (dir: string) =>
  writeRequest(join(dir, "supervise", "queue"), {
    version: 1, id: "req-1", kind: "host", host: "docs.example.test", tlsPassthrough: false, reason: "docs", question: null,
    status: "pending", answer: null, createdAt: new Date().toISOString(), decidedAt: null,
  });

/** `just start slug=S` to its y/N (the rebuild rewrote the policy), req-1 approved there
 * (bb-supervise approve), then "n"; the flow's output. */
async function approveThenNo(t: TestContext, b: { slug: string; env: Record<string, string>; dir: string }): Promise<string> {
  const { term, closed, output } = await atTheQuestion(t, b.slug, b.env);
  assert.deepEqual(await hostsIn(b.dir), ["b.example.test"], "the setup: the rebuild rewrote the policy before the y/N");
  const approved = await run([bin("bb-supervise"), "--slug", b.slug, "--state-dir", b.env.BB_STATE_DIR!, "approve", "req-1"], { env: b.env, expect: ANY_EXIT });
  assert.equal(approved.code, 0, approved.stderr);
  term.stdin!.write("n\n");
  await closed;
  assert.match(output(), /not started/);
  return output();
}

test("a host approved (bb-supervise approve) at the y/N of slug= stays in the firewall policy a \"n\" puts back", async (t) => {
  const { env, slug, dir } = await preparedBottle(t, "approved-at-yn");
  await askForDocs(dir);
  const output = await approveThenNo(t, { slug, env, dir });
  assert.deepEqual(await hostsIn(dir), ["a.example.test", "docs.example.test"], output);
  assert.ok(!existsSync(join(dir, "flow")), "the flow's copy stayed");
});

test("a start flow SIGKILLed at the y/N of slug= leaves its copy; the next just start slug= puts it back first, so its \"n\" leaves the folder as it was before either", async (t) => {
  const { env, slug, dir } = await preparedBottle(t, "killed-at-yn");
  const original = await folderState(dir);
  const first = await atTheQuestion(t, slug, env);
  const flowPid = JSON.parse(await readFile(join(dir, "owner.json"), "utf8")).pid as number;
  process.kill(flowPid, "SIGKILL");
  await first.closed;
  assert.deepEqual((await readdir(join(dir, "flow"))).filter((n) => n.startsWith("before.")), [`before.${flowPid}`], "the setup: the killed flow left its copy");
  assert.deepEqual(await hostsIn(dir), ["b.example.test"], "the setup: and the rewritten files");

  const second = await atTheQuestion(t, slug, env);
  second.term.stdin!.write("n\n");
  await second.closed;
  assert.match(second.output(), /not started/);
  assert.deepEqual(await folderState(dir), original, second.output());
});

/**
 * A bundle left running by a bottle whose agent stopped (an agent container or smolvm
 * machine that died): a stand-in whose PID 1 acts as the firewall does, holding the policy
 * it read at its start and re-reading it on SIGHUP only, and saying so. Its plan is the
 * bottle's, with this bundle in it.
 */
async function runningBundle(t: TestContext, dir: string): Promise<{ held: () => Promise<string[]> }> {
  const name = `bbt-putback-${randomBytes(3).toString("hex")}`;
  const reread = "cp /bb/firewall/policy.json /held.json";
  const script = `${reread}; trap '${reread}; echo "firewall | firewall: policy reloaded from /bb/firewall/policy.json"' HUP; while :; do sleep 0.05; done`;
  await run(["docker", "run", "--detach", "--name", name, ...labelArgs(testLabels()), "--network", "none", "-v", `${join(dir, "firewall")}:/bb/firewall:ro`, "debian:bookworm-slim", "sh", "-c", script]);
  t.after(() => run(["docker", "rm", "--force", name], { expect: ANY_EXIT }));
  const plan = await readPlanFile(join(dir, "plan.json"));
  await savePlan({
    ...plan,
    bundle: {
      container: name, image: "i", networks: { internal: "n", egress: "e" }, networkIds: null, caCert: "/ca", hostPorts: null, loopbackAddr: null, startedAt: new Date().toISOString(),
      agentUrls: { proxy: "http://firewall:8888", gitGate: null, supervise: "http://supervise:9100/mcp" },
    },
  });
  const held = async () => {
    const r = await run(["docker", "exec", name, "cat", "/held.json"]);
    return (JSON.parse(r.stdout).hosts as { host: string }[]).map((h) => h.host).sort();
  };
  for (let i = 0; i < 100 && (await run(["docker", "exec", name, "test", "-f", "/held.json"], { expect: ANY_EXIT })).code !== 0; i++) await new Promise((r) => setTimeout(r, 50));
  return { held };
}

test("a \"n\" at the y/N of slug= over a bottle whose bundle still runs has its firewall re-read the policy put back, with the host approved meanwhile", async (t) => {
  const { env, slug, dir } = await preparedBottle(t, "bundle-up-at-yn");
  await askForDocs(dir);
  const bundle = await runningBundle(t, dir);
  assert.deepEqual(await bundle.held(), ["a.example.test"], "the setup: the firewall holds the bottle's policy");
  // The approve reads the rebuilt plan, which has no bundle: nothing is signalled then.
  const output = await approveThenNo(t, { slug, env, dir });
  assert.deepEqual(await hostsIn(dir), ["a.example.test", "docs.example.test"], output);
  assert.deepEqual(await bundle.held(), await hostsIn(dir), `the running firewall holds another policy than its file\n${output}`);
});
