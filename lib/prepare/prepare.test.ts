// prepare() with a checkout and a state root on the same disk, nested either way.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, symlink } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import process from "node:process";
import { isBbError } from "../errors.ts";
import { recordApproval } from "../supervise/approvals.ts";
import { underDecisionLock } from "../supervise/lock.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { REPO } from "../../tests/support/tools.ts";
import { prepare } from "./prepare.ts";

const prep = (cwd: string, stateRoot: string) =>
  prepare({ agent: "researcher", manifestDir: join(REPO, "bottles"), stateRoot, backend: "docker", cwd, identity: null });

test("a checkout holding the state root, or inside it, is refused before anything is made: its copy would carry bottles' state into this one", async (t) => {
  const dir = await tempDir(t);
  const checkout = join(dir, "checkout");
  await mkdir(checkout);
  const cases = [
    { cwd: checkout, state: join(checkout, "state"), why: /the state root .* lies inside it/ },
    { cwd: checkout, state: join(checkout, "not", "made", "yet"), why: /lies inside it/ },
    { cwd: join(dir, "via-link"), state: join(checkout, "state"), why: /lies inside it/, link: true },
    { cwd: join(dir, "state", "bottles"), state: join(dir, "state"), why: /it lies inside the state root/ },
  ];
  await symlink(checkout, join(dir, "via-link"));
  await mkdir(join(dir, "state", "bottles"), { recursive: true });
  for (const c of cases) {
    await assert.rejects(prep(c.cwd, c.state), (e: unknown) => isBbError(e) && e.code === "USAGE" && c.why.test(e.message), `${c.cwd} with state ${c.state}`);
  }
  assert.equal(existsSync(join(checkout, "state")), false, "nothing was made");
  assert.deepEqual(await readdir(join(dir, "state", "bottles")), []);
  // Control: side by side, the same checkout prepares.
  const plan = await prep(checkout, join(dir, "elsewhere"));
  assert.equal(plan.cwd, checkout);
});

test("a resumed bottle keeps the hosts approved for it, and names one bb-supervise no longer grants instead of dropping it silently", async (t) => {
  const dir = await tempDir(t);
  const stateRoot = join(dir, "state");
  const again = () => prepare({ agent: "researcher", manifestDir: join(REPO, "bottles"), stateRoot, backend: "docker", cwd: null, identity: "researcher-ab12" });
  const first = await again();
  await recordApproval(first.files.dir, { host: "docs.python.org", tlsPassthrough: false, approvedAt: first.createdAt, request: "aa11" });
  await recordApproval(first.files.dir, { host: "*.amazonaws.com", tlsPassthrough: false, approvedAt: first.createdAt, request: "bb22" });
  const said: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((text: string) => (said.push(String(text)), true)) as typeof process.stderr.write;
  let resumed;
  try {
    resumed = await again();
  } finally {
    process.stderr.write = write;
  }
  const hosts = JSON.parse(await readFile(resumed.files.firewallPolicy, "utf8")).hosts.map((h: { host: string }) => h.host);
  assert.ok(hosts.includes("docs.python.org"), hosts.join(", "));
  assert.ok(!hosts.includes("*.amazonaws.com"), hosts.join(", "));
  assert.match(said.join(""), /left out \*\.amazonaws\.com, which you approved for this bottle before/);
});

test("a rebuild waits while a decision holds the bottle (an approve between its read of the approvals and its rewrite of the policy would be lost)", async (t) => {
  const dir = await tempDir(t);
  const stateRoot = join(dir, "state");
  const again = () => prepare({ agent: "researcher", manifestDir: join(REPO, "bottles"), stateRoot, backend: "docker", cwd: null, identity: "researcher-cd34" });
  const first = await again();
  let release!: () => void;
  let held!: () => void;
  const holds = new Promise<void>((r) => (held = r));
  let rebuilt = false;
  const holding = underDecisionLock(first.files.dir, async () => {
    const released = new Promise<void>((r) => (release = r));
    held();
    await released;
    // What an approve does while it holds the lock: the rebuild must read it afterwards.
    await recordApproval(first.files.dir, { host: "docs.python.org", tlsPassthrough: false, approvedAt: first.createdAt, request: "aa11" });
  });
  await holds; // the lock is the decision's before the rebuild starts, not by luck of timing
  const rebuilding = again().then((p) => ((rebuilt = true), p));
  await new Promise((r) => setTimeout(r, 500)); // room for a rebuild that does not wait to end
  assert.equal(rebuilt, false, "the rebuild went on while the lock was held");
  release();
  await holding;
  const plan = await rebuilding;
  const hosts = JSON.parse(await readFile(plan.files.firewallPolicy, "utf8")).hosts.map((h: { host: string }) => h.host);
  assert.ok(hosts.includes("docs.python.org"), hosts.join(", "));
});
