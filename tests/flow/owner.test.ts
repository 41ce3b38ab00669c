// The start flow's own reading of a bottle's owner record (scripts/flow.sh live_owner):
// `just start slug=S` never rebuilds or takes over a bottle another live flow owns, and
// takes a dead flow's record for what it is. No Docker engine needed: the refusal comes
// before any of it, and a dead owner's resume stops at the y/N no terminal can answer.
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test, type TestContext } from "node:test";
import { procStartTime } from "../../lib/inventory/owner.ts";
import { run, start, ANY_EXIT } from "../../lib/proc.ts";
import { skipWhen } from "../support/skip.ts";
import { tempDir } from "../support/tmp.ts";
import { REPO, runTool } from "../support/tools.ts";
import { zombie } from "../support/zombie.ts";

async function preparedBottle(t: TestContext): Promise<{ state: string; dir: string }> {
  const state = await tempDir(t);
  const r = await runTool("bb-prepare", ["shell", "--state-dir", state, "--identity", "dev"]);
  assert.equal(r.code, 0, r.stderr);
  return { state, dir: join(state, "bottles", "dev") };
}

const resume = (state: string) =>
  run([join(REPO, "scripts/flow.sh"), "start", "slug=dev"], { env: { BB_STATE_DIR: state }, input: "", expect: ANY_EXIT, timeoutMs: 60_000 });

function sleeper(t: TestContext): number {
  const child = start(["sleep", "60"], { stdio: "ignore" });
  t.after(() => child.kill("SIGKILL"));
  return child.pid!;
}

test("just start slug= of a bottle another live start flow is starting is refused, naming that flow, and changes nothing", async (t) => {
  const { state, dir } = await preparedBottle(t);
  const pid = sleeper(t);
  for (const record of [{ pid }, { pid, procStart: procStartTime(pid) ?? undefined }]) {
    const text = JSON.stringify({ ...record, startedAt: new Date().toISOString() });
    await writeFile(join(dir, "owner.json"), text);
    const r = await resume(state);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, `just start: slug=dev is being started by another start flow (pid ${pid}); run this again once it is up\n`);
    assert.equal(await readFile(join(dir, "owner.json"), "utf8"), text);
  }
});

/** Each record must read as a dead flow's: the resume goes on to its y/N (none can be answered here). */
async function takenForDead(state: string, dir: string, records: { pid: number; procStart?: string }[]): Promise<void> {
  for (const record of records) {
    await writeFile(join(dir, "owner.json"), JSON.stringify({ ...record, startedAt: new Date().toISOString() }));
    const r = await resume(state);
    assert.equal(r.code, 2, `${JSON.stringify(record)}: ${r.stderr}`);
    assert.match(r.stderr, /no terminal to ask y\/N on/, JSON.stringify(record));
  }
}

test("just start slug= takes a dead flow's record for dead: an exited pid", async (t) => {
  const { state, dir } = await preparedBottle(t);
  await takenForDead(state, dir, [{ pid: 2 ** 22 + 1 }]);
});

test("just start slug= takes a dead flow's record for dead: a zombie, a pid reused by a process that started at another time", skipWhen(process.platform !== "linux" && "a zombie and a process's start time are read in /proc (Linux)", "a zombie or reused pid as the owner"), async (t) => {
  const { state, dir } = await preparedBottle(t);
  const pid = await zombie(t);
  const live = sleeper(t);
  const liveStart = procStartTime(live);
  assert.ok(liveStart, `no start time in /proc for the live pid ${live}`);
  await takenForDead(state, dir, [{ pid }, { pid: live, procStart: String(Number(liveStart) + 1) }]);
});

test("just start slug= of a bottle whose owner.json is a FIFO takes it for no record, instead of waiting on it forever", async (t) => {
  const { state, dir } = await preparedBottle(t);
  await run(["mkfifo", join(dir, "owner.json")]);
  const r = await run([join(REPO, "scripts/flow.sh"), "start", "slug=dev"], { env: { BB_STATE_DIR: state }, input: "", expect: ANY_EXIT, timeoutMs: 20_000 });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /no terminal to ask y\/N on/);
});
