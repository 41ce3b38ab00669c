import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { samplePlan } from "../../tests/support/plans.ts";
import { listenOn } from "../../tests/support/ports.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import type { CreateSpec } from "../smolvm/argv.ts";
import type { Smolvm } from "../smolvm/driver.ts";
import { run } from "../proc.ts";
import { BUNDLE_URL_VARS, rootExec, WITH_BUNDLE_ENV } from "./env.ts";
import { asAgent, startSmolvmAgent } from "./smolvm.ts";

function bundled(addr: string, ports: Record<string, number>) {
  const plan = { ...samplePlan(), backend: "smolmachines" as const };
  return {
    ...plan,
    bundle: {
      container: `bb-${plan.slug}-bundle`, image: "i", networks: { internal: null, egress: "e" }, networkIds: null, caCert: "/ca",
      agentUrls: { proxy: `http://${addr}:${ports.firewall}`, gitGate: null, supervise: null }, hostPorts: ports, loopbackAddr: addr, startedAt: "t",
    },
  };
}

/** A driver that records create and start (and each create's spec), and fails on anything else. */
function recordingSmolvm(calls: string[], specs: CreateSpec[] = []): Smolvm {
  const unexpected = (what: string) => () => Promise.reject(new Error(`unexpected smolvm ${what}`));
  return {
    bin: "smolvm", version: { major: 1, minor: 8, patch: 0, text: "1.8.0" }, caps: { nameStyle: "flag", allowlistNeedsDbPatch: false, execForwardsWinsize: true },
    create: async (spec) => (specs.push(spec), calls.push(`create ${spec.name} ${spec.allowCidrs.join(",")}`), { allowlistPatched: false }),
    start: async (name) => void calls.push(`start ${name}`),
    stop: unexpected("stop"), delete: unexpected("delete"), exec: unexpected("exec"), execArgv: () => { throw new Error("unexpected smolvm execArgv"); },
    cpIn: unexpected("cp"), cpOut: unexpected("cp"), ls: unexpected("ls"), status: unexpected("status"), packCreate: unexpected("pack create"),
  };
}

const opts = (calls: string[], specs: CreateSpec[] = []) => ({
  smolvm: recordingSmolvm(calls, specs),
  agentImage: async () => ({ ref: "bot-bottle/agent:t", id: "sha256:00" }),
  pack: async () => ({ artifact: "/cache/00.smolmachine", cached: true }),
  occupants: { published: async () => [] },
});

const noProc = process.platform !== "linux" && "reads /proc/net/tcp";

test("startSmolvmAgent() makes no machine when its address is bound by something other than the bottle's bundle (another root's or user's bottle)", skipWhen(noProc, "startSmolvmAgent"), async (t) => {
  const addr = "127.0.0.252";
  const own = await listenOn(t, addr);
  const foreign = await listenOn(t, addr);
  const calls: string[] = [];
  await assert.rejects(startSmolvmAgent(bundled(addr, { firewall: own }), opts(calls)), (e: Error) => {
    assert.match(e.message, new RegExp(`^Cannot start the smolvm machine for shell-ab12: 127\\.0\\.0\\.252, the only address it may reach, is also bound by something that is not this bottle's bundle \\(port ${foreign}\\)`));
    return true;
  });
  assert.deepEqual(calls, []);

  // A port docker publishes there for another container counts too; the bundle's own do not.
  const published = async () => [
    { addr, port: own, container: "bb-shell-ab12-bundle" },
    { addr, port: 40000, container: "bb-other-1111-bundle" },
  ];
  await assert.rejects(startSmolvmAgent(bundled(addr, { firewall: own, supervise: foreign }), { ...opts(calls), occupants: { published } }), /\(port 40000 \(docker container bb-other-1111-bundle\)\)/);
  assert.deepEqual(calls, []);
});

test("startSmolvmAgent() creates and starts the machine when only the bundle's own ports are on its address", skipWhen(noProc, "startSmolvmAgent"), async (t) => {
  const addr = "127.0.0.253";
  const firewall = await listenOn(t, addr);
  const supervise = await listenOn(t, addr);
  const calls: string[] = [];
  const plan = await startSmolvmAgent(bundled(addr, { firewall, supervise }), opts(calls));
  assert.deepEqual(calls, ["create bb-shell-ab12 127.0.0.253/32", "start bb-shell-ab12"]);
  assert.equal(plan.vm?.name, "bb-shell-ab12");
});

test("startSmolvmAgent() sizes the machine by the bottle's limits: the default memory ceiling, and whole vCPUs rounded up from a fraction", skipWhen(noProc, "startSmolvmAgent"), async (t) => {
  const addr = "127.0.0.252";
  const ports = { firewall: await listenOn(t, addr), supervise: await listenOn(t, addr) };
  const specs: CreateSpec[] = [];
  await startSmolvmAgent(bundled(addr, ports), opts([], specs));
  const declared = bundled(addr, ports);
  await startSmolvmAgent({ ...declared, bottle: { ...declared.bottle, limits: { memoryMiB: 1536, cpus: 0.5 } } }, opts([], specs));
  assert.deepEqual(specs.map((s) => [s.memMiB, s.cpus]), [[8192, undefined], [1536, 1]]);
});

test("startSmolvmAgent() makes the machine without the bundle's URLs, whose values carry the agent key: smolvm takes env only on its command line, and keeps it", skipWhen(noProc, "startSmolvmAgent"), async (t) => {
  const addr = "127.0.0.253";
  const ports = { firewall: await listenOn(t, addr), supervise: await listenOn(t, addr) };
  const declared = bundled(addr, ports);
  const plan = { ...declared, bottle: { ...declared.bottle, env: { LANG: "C.UTF-8", HTTPS_PROXY: "http://declared:1" } } };
  const specs: CreateSpec[] = [];
  const started = await startSmolvmAgent({ ...plan, bundle: { ...plan.bundle, agentUrls: { ...plan.bundle.agentUrls, supervise: `http://${addr}:${ports.supervise}/mcp` } } }, opts([], specs));
  const names = Object.keys(specs[0]!.env);
  for (const n of BUNDLE_URL_VARS) assert.ok(!names.includes(n), `${n} is on smolvm's command line`);
  assert.deepEqual([specs[0]!.env.LANG, specs[0]!.env.BB_SLUG, specs[0]!.env.NO_PROXY], ["C.UTF-8", "shell-ab12", `localhost,127.0.0.1,git-gate,supervise,${addr}`]);
  assert.deepEqual(started.vm?.env, specs[0]!.env, "the plan records the machine's environment as made");
});

test("commands in the VM read the bundle's URLs first, as the agent (after runuser) or as root (after the declared names are gone); before bb-provision wrote them, they run without", async () => {
  const agent = asAgent(["id"]);
  assert.deepEqual(agent.slice(0, agent.indexOf("/bin/sh")), ["runuser", "-u", "node", "--", "env", "HOME=/home/node", "USER=node"]);
  assert.deepEqual(agent.slice(agent.indexOf("/bin/sh")), ["/bin/sh", "-c", WITH_BUNDLE_ENV, "sh", "id"]);
  const plan = { ...samplePlan(), bottle: { ...samplePlan().bottle, env: { BASH_ENV: "/home/node/x" } } };
  const root = rootExec(plan, { bundleEnv: true }).wrap(["id"]);
  assert.deepEqual(root, ["/usr/bin/env", "-u", "BASH_ENV", "USER=root", "LOGNAME=root", "/bin/sh", "-c", WITH_BUNDLE_ENV, "sh", "id"]);
  assert.equal((await run(["sh", "-c", WITH_BUNDLE_ENV, "sh", "echo", "ran"])).stdout, "ran\n");
});
