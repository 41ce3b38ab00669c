// How bb-supervise makes a running bundle's firewall read an approved host, against a real
// engine, with a stand-in bundle whose PID 1 is a shell acting as the firewall would: one
// that re-reads live on SIGHUP and says so, and one from an older bot-bottle that does not.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import process from "node:process";
import { test } from "node:test";
import { labelArgs, testLabels } from "../docker/labels.ts";
import { setLogLevel } from "../log.ts";
import { ANY_EXIT, run } from "../proc.ts";
import { samplePlan } from "../../tests/support/plans.ts";
import { until } from "../../tests/support/until.ts";
import { dockerFirewallReload } from "./bottle.ts";

setLogLevel("error");

const BASE = "debian:bookworm-slim";

async function standIn(t: { after: (fn: () => Promise<unknown>) => void }, onHup: string, opts: { busy?: boolean } = {}): Promise<string> {
  const name = `bbt-sup-${randomBytes(3).toString("hex")}`;
  // Busy: the firewall logs a refused request after another, as when the agent floods it
  // (about 4000 lines a second), in docker's local driver as bb-bundle runs the bundle.
  const step = opts.busy ? `i=0; while [ $i -lt 200 ]; do echo "firewall | firewall: warning: blocked GET flood-$i.test: not allowed by this bottle's policy"; i=$((i+1)); done; sleep 0.05` : "sleep 0.05";
  const script = `trap '${onHup}' HUP; trap 'echo "init | restarting firewall"' USR1; touch /tmp/ready; while :; do ${step}; done`;
  const logs = opts.busy ? ["--log-driver", "local", "--log-opt", "max-size=1m", "--log-opt", "max-file=2"] : [];
  await run(["docker", "run", "--detach", "--name", name, ...labelArgs(testLabels()), ...logs, "--network", "none", BASE, "sh", "-c", script]);
  t.after(() => run(["docker", "rm", "--force", name], { expect: ANY_EXIT }));
  // A PID 1 drops a signal it has no trap for yet: the test's HUP comes once the traps are
  // set (a file, not a log line, which a busy stand-in's rotation would take away).
  await until("the stand-in's traps set", async () => (await run(["docker", "exec", name, "test", "-e", "/tmp/ready"], { expect: ANY_EXIT })).code === 0, { everyMs: 100 });
  return name;
}

const planFor = (container: string) => ({
  ...samplePlan(),
  bundle: {
    container, image: "i", networks: { internal: "n", egress: "e" }, networkIds: null, caCert: "/ca", hostPorts: null, loopbackAddr: null, startedAt: "t",
    agentUrls: { proxy: "http://firewall:8888", gitGate: null, supervise: "http://supervise:9100/mcp" },
  },
});

const logs = async (name: string) => (await run(["docker", "logs", name])).stdout;
const RELOADED = 'echo "firewall | firewall: policy reloaded from /bb/firewall/policy.json (2 hosts)"';

/** The stand-in runs a trap only between its 50 ms sleeps: give it time to show a restart
 * (polling for one that is expected, waiting out a few sleeps for one that is not). */
async function restarted(name: string, expected: boolean): Promise<boolean> {
  for (let i = 0; i < (expected ? 60 : 6); i++) {
    if (/restarting firewall/.test(await logs(name))) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

test("a firewall that says it re-read its policy is left running: no restart", async (t) => {
  const name = await standIn(t, 'echo "firewall | firewall: policy reloaded from /bb/firewall/policy.json (2 hosts)"');
  await dockerFirewallReload(planFor(name))();
  assert.equal(await restarted(name, false), false);
});

test("a firewall that never says so (an older bundle) is restarted instead, so the approval still takes effect", async (t) => {
  const name = await standIn(t, "");
  await dockerFirewallReload(planFor(name))();
  assert.equal(await restarted(name, true), true);
});

test("a firewall that refuses the new policy fails the approval with its own words", async (t) => {
  const name = await standIn(t, 'echo "firewall | firewall: policy reload refused, keeping the previous policy: bad json"');
  await assert.rejects(dockerFirewallReload(planFor(name))(), /policy reload refused, keeping the previous policy: bad json/);
  assert.equal(await restarted(name, false), false);
});

test("a firewall busy logging what the agent floods it with gets time to answer: its answer 7 s after the signal is waited for, no restart", async (t) => {
  // The answer comes from a subshell, so the flood goes on meanwhile.
  const name = await standIn(t, `(sleep 7; ${RELOADED}) &`, { busy: true });
  await new Promise((r) => setTimeout(r, 1_000));
  const started = Date.now();
  await dockerFirewallReload(planFor(name))();
  assert.ok(Date.now() - started > 6_000, "answered before the stand-in did");
  assert.equal(await restarted(name, false), false);
});

test("a busy firewall that never answers is restarted once BB_DOCKER_TIMEOUT has passed", async (t) => {
  const name = await standIn(t, "", { busy: true });
  const was = process.env.BB_DOCKER_TIMEOUT;
  process.env.BB_DOCKER_TIMEOUT = "8";
  t.after(() => (was === undefined ? delete process.env.BB_DOCKER_TIMEOUT : (process.env.BB_DOCKER_TIMEOUT = was)));
  const started = Date.now();
  await dockerFirewallReload(planFor(name))();
  assert.ok(Date.now() - started > 7_500, `restarted after ${Date.now() - started} ms, while the firewall was still logging`);
  assert.equal(await restarted(name, true), true);
});
