// Where the bottle's agent key goes when a smolmachines bottle is provisioned: into the
// staged tar (the exec's stdin), never onto the exec's command line or into the plan.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AGENT_KEY_FILE, bottleAgentKey } from "../bundle/agent-key.ts";
import { AGENT } from "../layout.ts";
import type { Plan } from "../plan/schema.ts";
import { run } from "../proc.ts";
import { samplePlan } from "../../tests/support/plans.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { until } from "../../tests/support/until.ts";
import { provision, type Target } from "./provision.ts";
import { provisionScript } from "./script.ts";

type Ready = Plan & { bundle: NonNullable<Plan["bundle"]>; vm: NonNullable<Plan["vm"]> };

async function smolPlan(dir: string): Promise<{ plan: Ready; key: string }> {
  const p = samplePlan();
  const bottleDir = join(dir, "bottles", p.slug);
  await mkdir(bottleDir, { recursive: true });
  const key = await bottleAgentKey(bottleDir);
  await writeFile(join(dir, "ca.pem"), "-----BEGIN CERTIFICATE-----\n");
  const git = {
    upstreams: [{ host: "github.com", url: "ssh://git@github.com", identityFile: null, hostKeys: null }],
    repos: ["github.com/o/r"],
    push: { allowedRefs: [], protectedBranches: ["main"], protectedPaths: [], dlp: true },
  };
  const plan: Ready = {
    ...p,
    backend: "smolmachines",
    services: ["firewall", "git-gate", "supervise"],
    bottle: { ...p.bottle, git },
    files: { ...p.files, dir: bottleDir },
    bundle: {
      container: "c", image: "i", networks: { internal: null, egress: "e" }, networkIds: null, caCert: join(dir, "ca.pem"),
      agentUrls: { proxy: "http://127.0.0.16:40001", gitGate: "git://127.0.0.16:40002", supervise: "http://127.0.0.16:40003/mcp" },
      agentKeyFile: join(bottleDir, AGENT_KEY_FILE),
      hostPorts: { firewall: 40001, "git-gate": 40002, supervise: 40003 }, loopbackAddr: "127.0.0.16", startedAt: "t",
    },
    vm: { kind: "smolvm", image: "a", imageId: null, name: "bb-shell-ab12", id: null, artifact: "/a.smolmachine", user: "node", home: "/home/node", env: {}, startedAt: "t" },
  };
  return { plan, key };
}

test("provisioning a smolmachines bottle hands the agent its keyed URLs in the staged tar only: the exec's command line and the plan it writes hold no key", async (t) => {
  const dir = await tempDir(t);
  const { plan, key } = await smolPlan(dir);
  const guest = join(dir, "guest");
  await mkdir(guest);
  const argvs: string[][] = [];
  const { steps } = provisionScript(plan, { cwd: false });
  const done = await provision(plan, {
    async execRoot(argv, input) {
      argvs.push(argv);
      // What the script's first line does in the guest, here into a folder.
      await run(["tar", "-x", "--no-same-owner", "-C", guest, "-f", input.file]);
      return { argv, code: 0, stdout: steps.map((s) => `BB-STEP ${s} ok\n`).join(""), stderr: "" };
    },
  });
  assert.equal(argvs.length, 1);
  assert.ok(!JSON.stringify(argvs).includes(key), "the provisioning command line holds the agent key");
  assert.ok(!JSON.stringify(done).includes(key), "the plan holds the agent key");
  assert.match(argvs[0]!.at(-1)!, /"\$BB_GIT_GATE_URL"\/'github\.com\/x\/y'/, "the gitconfig check names git-gate's URL by its variable");
  assert.match(argvs[0]!.at(-1)!, new RegExp(`\\n\\. ${AGENT.bundleEnv}\\n`), "the script reads the URLs it just unpacked");

  // The URLs, keyed, as the VM has them: root's file, which the agent may read but not change.
  const envFile = join(guest, AGENT.bundleEnv);
  assert.equal((await stat(envFile)).mode & 0o777, 0o644);
  assert.equal((await stat(join(envFile, ".."))).mode & 0o777, 0o755);
  const env = await run(["sh", "-c", '. "$1"; env', "sh", envFile], { replaceEnv: true, env: { PATH: "/usr/bin:/bin" } });
  const vars = Object.fromEntries(env.stdout.split("\n").filter((l) => /^(HTTPS?_PROXY|https?_proxy|BB_\w+)=/.test(l)).map((l) => l.split(/=(.*)/s, 2)));
  assert.deepEqual(vars, {
    HTTP_PROXY: `http://bb:${key}@127.0.0.16:40001`,
    HTTPS_PROXY: `http://bb:${key}@127.0.0.16:40001`,
    http_proxy: `http://bb:${key}@127.0.0.16:40001`,
    https_proxy: `http://bb:${key}@127.0.0.16:40001`,
    BB_GIT_GATE_URL: `git://127.0.0.16:40002/${key}`,
    BB_SUPERVISE_URL: `http://127.0.0.16:40003/${key}/mcp`,
  });
  // The files the agent's tools read carry the keyed URLs too.
  assert.match(await readFile(join(guest, AGENT.home, ".gitconfig"), "utf8"), new RegExp(`\\[url "git://127\\.0\\.0\\.16:40002/${key}/github\\.com/"\\]`));
  const mcp = JSON.parse(await readFile(join(guest, AGENT.home, ".bot-bottle", "mcp.json"), "utf8")) as { mcpServers: { supervise: { url: string } } };
  assert.equal(mcp.mcpServers.supervise.url, `http://127.0.0.16:40003/${key}/mcp`);
});

test("a provisioning step that fails with the keyed URL in its output is reported, and saved in no plan, without the key", async (t) => {
  const dir = await tempDir(t);
  const { plan, key } = await smolPlan(dir);
  const { steps } = provisionScript(plan, { cwd: false });
  const said = `http://127.0.0.16:40003/${key}/mcp`;
  const stdout = steps.map((s) => (s === "supervise-mcp" ? `BB-STEP ${s} fail cannot add ${said}\n` : `BB-STEP ${s} ok\n`)).join("");
  const e = await provision(plan, { execRoot: async (argv) => ({ argv, code: 0, stdout, stderr: `error: ${said}\n` }) }).catch((x: Error & { details?: unknown }) => x);
  assert.ok(e instanceof Error);
  const text = `${e.message}\n${JSON.stringify((e as { details?: unknown }).details)}`;
  assert.match(text, /supervise-mcp \(cannot add http:\/\/127\.0\.0\.16:40003\/\*\*\*\/mcp\)/);
  assert.ok(!text.includes(key), text);
});

/** The staging tars in the bottle's provision folder (none when it is gone). */
const stagedTars = async (plan: Ready) => (await readdir(join(plan.files.dir, "provision")).catch(() => [] as string[])).filter((n) => n.endsWith(".tar"));

test("provision() stages the files while the bottle cannot be touched yet, and execs only once it can", async (t) => {
  const dir = await tempDir(t);
  const { plan } = await smolPlan(dir);
  const { steps } = provisionScript(plan, { cwd: false });
  const execs: string[] = [];
  let reachable!: (target: Target) => void;
  const bottle = new Promise<Target>((resolve) => (reachable = resolve));
  const done = provision(plan, bottle);
  // Staged while the bottle is still out of reach (bb-provision: its bundle's daemons coming up).
  await until("the staging tar while the bottle is out of reach", async () => (await stagedTars(plan)).length === 1);
  assert.equal(execs.length, 0, "no exec before the bottle is reachable");
  reachable({
    async execRoot(argv, input) {
      execs.push(input.file);
      return { argv, code: 0, stdout: steps.map((s) => `BB-STEP ${s} ok\n`).join(""), stderr: "" };
    },
  });
  const plan2 = await done;
  assert.equal(execs.length, 1);
  assert.ok(plan2.provision?.steps.every((s) => s.ok));
  assert.deepEqual(await stagedTars(plan), [], "the staging is removed once provisioned");
});

test("provision() whose bottle never becomes reachable throws that error and leaves no staging behind", async (t) => {
  const dir = await tempDir(t);
  const { plan } = await smolPlan(dir);
  let unreachable!: (e: Error) => void;
  const bottle = new Promise<Target>((_, reject) => (unreachable = reject));
  const done = provision(plan, bottle).catch((e: Error) => e);
  await until("the staging tar while the bottle is out of reach", async () => (await stagedTars(plan)).length === 1);
  const why = new Error("daemon firewall did not answer");
  unreachable(why);
  assert.equal(await done, why);
  assert.deepEqual(await stagedTars(plan), [], "the staging is removed");
  // A bottle that failed before the staging was done: the staging is removed all the same.
  const early = provision(plan, Promise.reject(new Error("gone"))).catch((e: Error) => e);
  assert.match(String(await early), /gone/);
  assert.deepEqual(await stagedTars(plan), []);
});
