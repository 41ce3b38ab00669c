import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import process from "node:process";
import { BbError } from "../errors.ts";
import { procStartTime } from "../inventory/owner.ts";
import { run, start } from "../proc.ts";
import { RELOAD_OWED_FILE } from "../supervise/approvals.ts";
import { approveRequest, BUNDLE_DOWN, denyRequest } from "../supervise/decide.ts";
import { DECISION_LOCK, underDecisionLock } from "../supervise/lock.ts";
import { writeRequest } from "../supervise/queue.ts";
import { folderState } from "../../tests/support/folder-state.ts";
import { tempDir, writeTree } from "../../tests/support/tmp.ts";
import { fifo, settled } from "../../tests/support/fifo.ts";
import { beginCopy, copyOf, PREPARED_DIRS, PREPARED_ENTRIES, putBack } from "./before.ts";
import { prepare } from "./prepare.ts";

/** A bottle prepared from a manifest whose bottle allows a.example.test, then the manifest
 * changed to b.example.test, egress, git and a new prompt: every file a rebuild writes differs. */
async function preparedBottle(t: import("node:test").TestContext) {
  const root = await tempDir(t);
  const manifestDir = await writeTree(join(root, "m"), {
    "agents/a.md": "---\nprovider: shell\nbottle: b\n---\nThe first prompt.\n",
    "b.md": "---\nsupervise: true\nallow_hosts: [a.example.test]\n---\n",
  });
  const stateRoot = join(root, "state");
  const slug = "a-put1";
  // The start flow's rebuild by default (a y/N follows); copyBefore false: one run by hand.
  const rebuild = (ownerPid: number | null, copyBefore = true) =>
    prepare({ agent: "a", manifestDir, stateRoot, backend: "docker", cwd: null, identity: slug, rebuild: true, ownerPid, copyBefore });
  const first = await prepare({ agent: "a", manifestDir, stateRoot, backend: "docker", cwd: null, identity: slug });
  await writeTree(manifestDir, {
    "agents/a.md": "---\nprovider: shell\nbottle: b\n---\nA second prompt.\n",
    "b.md": "---\nsupervise: true\nallow_hosts: [b.example.test]\negress:\n  - {host: api.example.test, auth: bearer, token_env: PUT_BACK_TEST_TOKEN}\ngit:\n  upstreams:\n    example.test: {url: \"https://example.test\"}\n  repos: [example.test/team/app]\n---\n",
  });
  return { dir: first.files.dir, rebuild, manifestDir };
}

const hostsIn = async (dir: string) =>
  (JSON.parse(await readFile(join(dir, "firewall", "policy.json"), "utf8")).hosts as { host: string }[]).map((h) => h.host).sort();

/** The bottle's folder but for flow/, where the copies are. */
async function outsideFlow(dir: string) {
  const state = await folderState(dir);
  delete state["flow"];
  return state;
}

/** A pid no process has (one that has exited): a start flow killed by SIGKILL. */
const deadPid = async () => Number((await run(["sh", "-c", "echo $$"])).stdout.trim());

test("a put-back keeps a host approved while the rebuild waited at its y/N in the policy it puts back (approved-hosts.json alone had it)", async (t) => {
  const { dir, rebuild } = await preparedBottle(t);
  const before = await hostsIn(dir);
  await rebuild(process.pid);
  assert.deepEqual(await hostsIn(dir), ["api.example.test", "b.example.test"], "the setup: the rebuild rewrote the policy");
  // The operator approves at the y/N (bb-supervise reads the rebuilt plan: no bundle to reload).
  const queueDir = join(dir, "supervise", "queue");
  await writeRequest(queueDir, {
    version: 1, id: "req-1", kind: "host", host: "docs.example.test", tlsPassthrough: false, reason: "docs", question: null,
    status: "pending", answer: null, createdAt: new Date().toISOString(), decidedAt: null,
  });
  await approveRequest({ queueDir, bottleDir: dir, policyFile: join(dir, "firewall", "policy.json"), reloadFirewall: async () => {} }, "req-1");
  assert.equal(await putBack(dir, process.pid), true);
  assert.deepEqual(await hostsIn(dir), [...before, "docs.example.test"].sort());
  assert.equal(existsSync(copyOf(dir, process.pid)), false, "the copy stayed");
});

test("a put-back has a running firewall re-read the policy put back, under the decision lock; one it cannot tell is owed a reload, one not running is not", async (t) => {
  const { dir, rebuild } = await preparedBottle(t);
  const before = await hostsIn(dir);
  const owed = join(dir, RELOAD_OWED_FILE);
  await rebuild(process.pid);
  const read: string[][] = [];
  const reloadFirewall = async (d: string) => {
    assert.ok(existsSync(join(d, DECISION_LOCK)), "reloaded outside the decision lock");
    read.push(await hostsIn(d));
  };
  assert.equal(await putBack(dir, process.pid, { reloadFirewall }), true);
  assert.deepEqual(read, [before], "the firewall was not told to re-read the policy put back");
  assert.equal(existsSync(owed), false);

  await rebuild(process.pid);
  const down = new BbError("STATE", "No such container: bb-x", { details: { [BUNDLE_DOWN]: true } });
  assert.equal(await putBack(dir, process.pid, { reloadFirewall: () => Promise.reject(down) }), true);
  assert.equal(existsSync(owed), false, "a reload owed to a bundle that does not run");

  await rebuild(process.pid);
  const refused = new BbError("STATE", "policy reload refused, keeping the previous policy: bad json");
  assert.equal(await putBack(dir, process.pid, { reloadFirewall: () => Promise.reject(refused) }), true);
  assert.deepEqual(await hostsIn(dir), before, "the folder is put back all the same");
  assert.match(await readFile(owed, "utf8"), /policy reload refused/);
});

test("a put-back whose firewall re-read the policy owes it no reload: the marker put back with the folder goes, and a later deny does not reload again", async (t) => {
  const { dir, rebuild } = await preparedBottle(t);
  const owed = join(dir, RELOAD_OWED_FILE);
  const queueDir = join(dir, "supervise", "queue");
  for (const reload of [async () => {}, () => Promise.reject(new BbError("STATE", "No such container: bb-x", { details: { [BUNDLE_DOWN]: true } }))]) {
    // An approval's reload timed out before the rebuild, which starts its bundle afresh.
    await writeFile(owed, "approve req-0 timed out\n");
    await rebuild(process.pid);
    assert.equal(existsSync(owed), false, "the setup: the rebuild owes no reload");
    assert.equal(await putBack(dir, process.pid, { reloadFirewall: reload }), true);
    assert.equal(existsSync(owed), false, "the marker put back stayed after the firewall read the policy (or none runs)");
  }
  const id = "req-2";
  await writeRequest(queueDir, {
    version: 1, id, kind: "host", host: "c.example.test", tlsPassthrough: false, reason: "docs", question: null,
    status: "pending", answer: null, createdAt: new Date().toISOString(), decidedAt: null,
  });
  let reloads = 0;
  await denyRequest({ queueDir, bottleDir: dir, reloadFirewall: async () => void reloads++ }, id, "no");
  assert.equal(reloads, 0, "a deny redid the reload the put-back paid");
});

test("a rebuild that fails after its copy, putting the folder back itself, has a running firewall re-read the policy put back, as --put-back does", async (t) => {
  const { dir, manifestDir } = await preparedBottle(t);
  const before = await hostsIn(dir);
  await writeTree(dir, { "approved-hosts.json": "{not json" });
  const read: string[][] = [];
  const reloadFirewall = async (d: string) => {
    assert.ok(existsSync(join(d, DECISION_LOCK)), "reloaded outside the decision lock");
    read.push(await hostsIn(d));
  };
  await assert.rejects(
    prepare({ agent: "a", manifestDir, stateRoot: join(dir, "..", ".."), backend: "docker", cwd: null, identity: "a-put1", rebuild: true, ownerPid: process.pid, copyBefore: true, reloadFirewall }),
    /approved-hosts\.json/,
  );
  assert.deepEqual(read, [before], "the firewall was not told to re-read the policy put back");
});

test("a put-back waits for a decision under way: an approve that read the rewritten policy would write it back over the one put back", async (t) => {
  const { dir, rebuild } = await preparedBottle(t);
  const before = await hostsIn(dir);
  await rebuild(process.pid);
  let putBackDone = false;
  const policy = join(dir, "firewall", "policy.json");
  // An approve's read, change and write of the policy, with time between read and write.
  let held!: () => void;
  const holds = new Promise<void>((r) => (held = r));
  const deciding = underDecisionLock(dir, async () => {
    const read = JSON.parse(await readFile(policy, "utf8"));
    held();
    await new Promise((r) => setTimeout(r, 500)); // room for a put-back that does not wait to go on
    assert.equal(putBackDone, false, "the put-back went on while a decision held the bottle");
    read.hosts.push({ host: "docs.example.test", tlsPassthrough: false, routed: false });
    const { writeFileAtomic } = await import("../fs-atomic.ts");
    await writeFileAtomic(policy, JSON.stringify(read, null, 2) + "\n", 0o640);
  });
  await holds; // the decision has read the policy under its lock before the put-back starts
  const puttingBack = putBack(dir, process.pid).then(() => (putBackDone = true));
  await deciding;
  await puttingBack;
  // The approve's own record is what a put-back keeps hosts from; here it wrote none, so
  // the policy is the one from before, whole.
  assert.deepEqual(await hostsIn(dir), before);
});

test("a rebuild after a start flow killed at its y/N (its copy left in flow/) puts that copy back first: a \"n\" then leaves the folder as it was before either", async (t) => {
  const { dir, rebuild } = await preparedBottle(t);
  const original = await folderState(dir);
  const killed = await deadPid();
  await rebuild(killed);
  assert.ok(existsSync(copyOf(dir, killed)), "the setup: the killed flow's copy is there");
  await rebuild(process.pid);
  assert.deepEqual(await readdir(join(dir, "flow")), [`before.${process.pid}`], "the killed flow's copy stayed");
  assert.equal(await putBack(dir, process.pid), true);
  const after = await outsideFlow(dir);
  assert.deepEqual(after, original);
});

test("a rebuild that fails after its copy puts the folder back itself, its claim with it", async (t) => {
  const { dir, rebuild } = await preparedBottle(t);
  const original = await folderState(dir);
  await writeTree(dir, { "approved-hosts.json": "{not json" });
  delete original["approved-hosts.json"];
  await assert.rejects(rebuild(process.pid), /approved-hosts\.json/);
  const after = await outsideFlow(dir);
  delete after["approved-hosts.json"];
  assert.deepEqual(after, original);
  assert.deepEqual(await readdir(join(dir, "flow")), []);
});

test("a rebuild run by hand (--owner-pid without --copy-before: no y/N follows) leaves no copy, and puts back a killed flow's first, so no later rebuild undoes it", async (t) => {
  const { dir, rebuild, manifestDir } = await preparedBottle(t);
  const killed = await deadPid();
  await rebuild(killed);
  assert.ok(existsSync(copyOf(dir, killed)), "the setup: a killed flow's copy is there");
  const handPid = await deadPid();
  await rebuild(handPid, false);
  assert.deepEqual(await readdir(join(dir, "flow")), [], "a copy stayed, for a later rebuild to put back over this one");
  // The hand run's result is what a start flow's "n" puts back, whatever the manifest says by then.
  const handRun = await outsideFlow(dir);
  await writeTree(manifestDir, { "b.md": "---\nallow_hosts: [c.example.test]\n---\n" });
  await rebuild(process.pid);
  assert.deepEqual(await hostsIn(dir), ["c.example.test"], "the setup: the flow's rebuild rewrote the policy");
  assert.equal(await putBack(dir, process.pid), true);
  const after = await outsideFlow(dir);
  assert.deepEqual(after, handRun);
});

test("a rebuild without the claim (no --owner-pid) of a bottle a start flow holds at its y/N is refused (BUSY), the folder and that flow's copy untouched; once the flow is gone it puts that copy back first", async (t) => {
  const { dir, rebuild } = await preparedBottle(t);
  const flow = start(["sleep", "60"], { stdio: "ignore" });
  t.after(() => void flow.kill("SIGKILL"));
  await rebuild(flow.pid!);
  const held = await folderState(dir);
  // Had it rewritten the folder, that flow's "n" would put its copy back over this run.
  await assert.rejects(rebuild(null, false), (e: BbError) => e.code === "BUSY" && e.message.includes(`pid ${flow.pid}`));
  assert.deepEqual(await folderState(dir), held);
  flow.kill("SIGKILL");
  await new Promise((r) => flow.on("close", r));
  await rebuild(null, false);
  assert.deepEqual(await readdir(join(dir, "flow")), [], "the dead flow's copy stayed, for a later rebuild to put back over this one");
  assert.deepEqual(await hostsIn(dir), ["api.example.test", "b.example.test"], "the rebuild did not write the folder");
});

test("an unfinished copy whose flow died is removed by the next rebuild even when its pid now belongs to another process", async (t) => {
  const { dir, rebuild } = await preparedBottle(t);
  // A live process that is not the flow the copy was begun for: its pid, reused.
  const other = start(["sleep", "60"], { stdio: "ignore" });
  t.after(() => void other.kill("SIGKILL"));
  const part = await beginCopy(dir, other.pid!);
  // The record of the flow it was begun for, which started before this process did.
  const started = Number(procStartTime(other.pid!));
  await writeFile(join(part, "flow-owner.json"), JSON.stringify({ pid: other.pid, startedAt: new Date().toISOString(), procStart: String(started - 1) }));
  // And a live flow's unfinished copy stays.
  const live = start(["sleep", "60"], { stdio: "ignore" });
  t.after(() => void live.kill("SIGKILL"));
  const livePart = await beginCopy(dir, live.pid!);
  await rebuild(process.pid);
  assert.deepEqual((await readdir(join(dir, "flow"))).sort(), [`before.${live.pid}.part`, `before.${process.pid}`].sort());
  const rec = JSON.parse(await readFile(join(livePart, "flow-owner.json"), "utf8"));
  assert.deepEqual([rec.pid, rec.procStart], [live.pid, procStartTime(live.pid!)], "a copy begun names its flow and that flow's start time");
});

test("PREPARED_ENTRIES holds every name a rebuild writes in the bottle's folder (so a \"n\" puts back all of it)", async (t) => {
  const { dir, rebuild } = await preparedBottle(t);
  await rebuild(process.pid);
  // Left be by bb-prepare (the flow's copy aside): what a fresh bottle with every section has.
  const written = (await readdir(dir)).filter((n) => n !== "flow").sort();
  const known = new Set<string>([...PREPARED_ENTRIES, ...PREPARED_DIRS.map((d) => d.split("/")[0]!)]);
  assert.deepEqual(written.filter((n) => !known.has(n)), []);
  assert.deepEqual(await readdir(join(dir, "supervise")), ["queue"]);
});

test("a rebuild over a killed flow's copy whose list of what it saved (saved.json) is a FIFO refuses it, naming it, instead of waiting on it (Ctrl-C and all) forever", async (t) => {
  const { dir, rebuild } = await preparedBottle(t);
  const killed = await deadPid();
  await rebuild(killed);
  const saved = join(copyOf(dir, killed), "saved.json");
  await rm(saved);
  await fifo(t, saved);
  const err = await settled("the rebuild done with the FIFO", rebuild(process.pid));
  assert.ok(err instanceof BbError && err.code === "STATE", String(err));
  assert.match(err.message, new RegExp(`${saved.replace(/[.]/g, "\\.")} is a FIFO, not a regular file`));
});
