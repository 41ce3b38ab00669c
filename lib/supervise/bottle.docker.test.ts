// How bb-supervise makes a running bundle's firewall read an approved host, against a real
// engine, with a stand-in bundle whose PID 1 is a shell acting as the firewall would: one
// that re-reads live on SIGHUP and says so, and one from an older bot-bottle that does not.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { labelArgs, testLabels } from "../docker/labels.ts";
import { setLogLevel } from "../log.ts";
import { ANY_EXIT, run } from "../proc.ts";
import { samplePlan } from "../../tests/support/plans.ts";
import { dockerFirewallReload } from "./bottle.ts";

setLogLevel("error");

const BASE = "debian:bookworm-slim";

async function standIn(t: { after: (fn: () => Promise<unknown>) => void }, onHup: string): Promise<string> {
  const name = `bbt-sup-${randomBytes(3).toString("hex")}`;
  const script = `trap '${onHup}' HUP; trap 'echo "init | restarting firewall"' USR1; while :; do sleep 0.05; done`;
  await run(["docker", "run", "--detach", "--name", name, ...labelArgs(testLabels()), BASE, "sh", "-c", script]);
  t.after(() => run(["docker", "rm", "--force", name], { expect: ANY_EXIT }));
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
