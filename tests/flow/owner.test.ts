// The start flow's own reading of a bottle's owner record (scripts/flow.sh live_owner):
// `just start slug=S` never rebuilds or takes over a bottle another live flow owns, and
// takes a dead flow's record for what it is. No Docker engine needed: the refusal comes
// before any of it, and a dead owner's resume stops at the y/N no terminal can answer.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test, type TestContext } from "node:test";
import { claimOwner, ownerAlive, ownerRecord, procStartTime, readOwner, readOwnerFile } from "../../lib/inventory/owner.ts";
import { run, start, ANY_EXIT } from "../../lib/proc.ts";
import { folderState } from "../support/folder-state.ts";
import { deadRecord as deadText, leaveReaping } from "../support/left-reaping.ts";
import { skipWhen } from "../support/skip.ts";
import { tempDir } from "../support/tmp.ts";
import { until } from "../support/until.ts";
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

/** A resume's take_over (scripts/flow-owner.sh) of the bottle in `dir` for a live process
 * of its own (the flow it stands for), run in bash; with `sig`, it says in that folder when
 * it tries the owner record's breaker (trying.NAME) and when it has judged the record
 * (checked.NAME), then waits there until the test makes go.NAME. */
function claimant(t: TestContext, dir: string, name: string, sig?: string) {
  const flow = sleeper(t);
  const hooks = sig === undefined ? "" : `
eval "judge_$(declare -f live_owner)"
live_owner() {
  local out r=0
  out=$(judge_live_owner "$@") || r=$?
  if [ "$1" = "$DIR" ]; then : > "$SIG/checked.$NAME"; until [ -e "$SIG/go.$NAME" ]; do sleep 0.01; done; fi
  printf '%s' "$out"; return $r
}
mkdir() { [ "$1" != "$DIR/owner.json.break" ] || : > "$SIG/trying.$NAME"; command mkdir "$@"; }`;
  const script = `. "$REPO/scripts/flow-owner.sh"${hooks}\nholder=$(take_over "$DIR" "$FLOW") && echo took || echo "held by $holder"`;
  const env = { REPO, DIR: dir, FLOW: String(flow), NAME: name, SIG: sig ?? "" };
  return { flow, done: run(["bash", "-c", script], { env, expect: ANY_EXIT, timeoutMs: 60_000 }) };
}

const deadRecord = (dir: string) => writeFile(join(dir, "owner.json"), JSON.stringify({ pid: 2 ** 22 + 1, startedAt: new Date().toISOString() }));
const ownerPid = async (dir: string) => JSON.parse(await readFile(join(dir, "owner.json"), "utf8")).pid as number;
/** The owner record's breaker in `dir` as a taker killed while it held it left it: its
 * record names a dead process. */
async function leftBreaker(dir: string): Promise<string> {
  const breaker = join(dir, "owner.json.break");
  await mkdir(breaker);
  await writeFile(join(breaker, "owner.json"), deadText());
  return breaker;
}
/** No breaker or temp record is left beside the owner record in `dir`. */
const noneLeft = async (dir: string) =>
  assert.deepEqual((await readdir(dir)).filter((n) => n.includes("owner.json") && n !== "owner.json"), [], "a breaker or temp record was left");
/** Settles once one of `paths` is there: the first. */
const firstOf = async (...paths: string[]) => {
  for (;;) {
    const there = paths.find((p) => existsSync(p));
    if (there) return there;
    await new Promise((r) => setTimeout(r, 10));
  }
};

test("of two resumes that both found a dead flow's record, only the first takes the bottle over: the second judges it again once the first is done, and finds it held", async (t) => {
  const { dir } = await preparedBottle(t);
  const sig = await tempDir(t);
  await deadRecord(dir);
  // The first stops once it has judged the record dead, before it takes the bottle.
  const a = claimant(t, dir, "a", sig);
  await firstOf(join(sig, "checked.a"));
  // The second gets as far as it can meanwhile: to its own judgement of the dead record,
  // or to the breaker the first holds.
  const b = claimant(t, dir, "b", sig);
  await firstOf(join(sig, "checked.b"), join(sig, "trying.b"));
  await writeFile(join(sig, "go.a"), "");
  assert.equal((await a.done).stdout, "took\n", (await a.done).stderr);
  await writeFile(join(sig, "go.b"), "");
  const second = await b.done;
  assert.equal(second.stdout, `held by ${a.flow}\n`, second.stderr);
  assert.equal(await ownerPid(dir), a.flow, "the second resume took the bottle from the first");
});

test("two resumes racing to take over a dead flow's bottle, many times over: each time exactly one takes it, and the record names that one", async (t) => {
  const { dir } = await preparedBottle(t);
  for (let round = 0; round < 40; round++) {
    await deadRecord(dir);
    const [a, b] = [claimant(t, dir, "a"), claimant(t, dir, "b")];
    const results = [await a.done, await b.done];
    const took = results.map((r) => r.stdout === "took\n");
    assert.equal(took.filter(Boolean).length, 1, `round ${round}: ${results.map((r) => r.stdout + r.stderr).join(" | ")}`);
    assert.equal(await ownerPid(dir), took[0] ? a.flow : b.flow, `round ${round}`);
    await noneLeft(dir);
  }
});

test("a start flow whose bb-prepare is killed once it has claimed the folder slug= names, before its copy of it is whole, gives the claim back: the record from before it, and no half-made one", async (t) => {
  const state = await tempDir(t);
  const dir = join(state, "bottles", "left");
  await mkdir(join(dir, "supervise", "queue"), { recursive: true });
  // A dead flow's record, which the claim replaces.
  await writeFile(join(dir, "owner.json"), JSON.stringify({ pid: 2 ** 22 + 1, startedAt: "2026-01-01T00:00:00.000Z" }) + "\n");
  // The bottle's decision lock, held by a live process (a bb-supervise approve): after its
  // claim, bb-prepare waits for it before it copies anything.
  await mkdir(join(dir, "supervise.lock"));
  await writeFile(join(dir, "supervise.lock", "owner.json"), JSON.stringify(ownerRecord(sleeper(t))) + "\n");
  const held = await folderState(dir);

  const flow = start([join(REPO, "scripts/flow.sh"), "start", "agent=shell", "slug=left", "yes=true"], { env: { BB_STATE_DIR: state }, stdio: ["ignore", "ignore", "pipe"] });
  t.after(() => void flow.kill("SIGKILL"));
  let err = "";
  flow.stderr!.on("data", (b: Buffer) => (err += b));
  const exited = new Promise<number | null>((r) => flow.on("close", (code) => r(code)));
  const prepare = async () => Number((await run(["pgrep", "-f", "bb-prepare.*--identity left"], { expect: ANY_EXIT })).stdout.trim().split("\n")[0]);
  for (let i = 0; i < 600 && !((await readOwner(dir).catch(() => null))?.pid === flow.pid && (await prepare())); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal((await readOwner(dir))?.pid, flow.pid, `bb-prepare never claimed the folder:\n${err}`);
  // What a claim still being made leaves when its bb-prepare is killed: the whole record's
  // temp file (lib/fs-atomic.ts), naming the flow.
  const pid = await prepare();
  await writeFile(join(dir, `.owner.json.tmp-${pid}-0123456789ab`), await readFile(join(dir, "owner.json")));
  process.kill(pid, "SIGKILL");
  assert.equal(await exited, 137, err);
  assert.deepEqual(await folderState(dir), held, `the flow's teardown left the folder changed:\n${err}`);
});

/** flow-owner.sh sourced, its live_owner made to say in $SIG each time it judges the folder
 * `target` (a bash word: judged.1, judged.2, ..., counted in files, as it judges in
 * subshells) and to wait after the first until the test makes $SIG/go. */
const pausedJudge = (target: string) => `. "$REPO/scripts/flow-owner.sh"
eval "judge_$(declare -f live_owner)"
live_owner() {
  local out r=0 n=1
  out=$(judge_live_owner "$@") || r=$?
  if [ "$1" = ${target} ]; then
    while [ -e "$SIG/judged.$n" ]; do n=$((n + 1)); done
    : > "$SIG/judged.$n"
    [ $n -ne 1 ] || until [ -e "$SIG/go" ]; do sleep 0.01; done
  fi
  printf '%s' "$out"; return $r
}`;

/** Runs `script` (with pausedJudge) in bash and, once it has first judged `folder`, puts a
 * fresh one in its place whose record names a live process, then lets it go on. */
async function swapWhileJudged(t: TestContext, folder: string, sig: string, script: string, env: Record<string, string>) {
  const done = run(["bash", "-c", script], { env: { REPO, SIG: sig, ...env }, expect: ANY_EXIT, timeoutMs: 60_000 });
  await until(`bash judging ${folder}`, () => existsSync(join(sig, "judged.1")), { timeoutMs: 30_000 });
  await rm(folder, { recursive: true });
  await mkdir(folder);
  const taker = sleeper(t);
  const fresh = JSON.stringify(ownerRecord(taker)) + "\n";
  await writeFile(join(folder, "owner.json"), fresh);
  await writeFile(join(sig, "go"), "");
  return { done, fresh, taker };
}

for (const ending of ["done", "killed"] as const) {
  test(`a resume that judged the owner record's breaker dead never removes the fresh breaker a live taker made there meanwhile, and takes the bottle once that taker is ${ending}`, async (t) => {
    const { dir } = await preparedBottle(t);
    const sig = await tempDir(t);
    await deadRecord(dir);
    const breaker = await leftBreaker(dir);
    // The resume stops once it has judged that breaker dead (its first judgement of it).
    const flow = sleeper(t);
    const script = `${pausedJudge('"$DIR/owner.json.break"')}
holder=$(take_over "$DIR" "$FLOW") && echo took || echo "held by $holder"`;
    // Meanwhile another taker removes that breaker and takes a fresh one, as a live process.
    const { done: a, fresh, taker } = await swapWhileJudged(t, breaker, sig, script, { DIR: dir, FLOW: String(flow) });
    // Once the resume judges the breaker again, it has acted on its first judgement (or it
    // removed the live taker's breaker, and went on without judging it again).
    const current = () => readFile(join(breaker, "owner.json"), "utf8").catch(() => "gone");
    await until("the resume judging the breaker again", async () => existsSync(join(sig, "judged.2")) || (await current()) !== fresh, { timeoutMs: 30_000 });
    assert.equal(await current(), fresh, "the resume removed the live taker's breaker");
    // The live taker done (its breaker removed), or killed holding it: the resume, whose
    // `reaping` is in that breaker, takes the bottle.
    if (ending === "done") await rm(breaker, { recursive: true });
    else process.kill(taker, "SIGKILL");
    const r = await a;
    assert.equal(r.stdout, "took\n", r.stderr);
    assert.equal(await ownerPid(dir), flow);
    await noneLeft(dir);
  });
}

test("a resume removes the breaker a taker killed while holding it left: one whose record names a process that is gone, or one without a record older than 2 s", async (t) => {
  const { dir } = await preparedBottle(t);
  const breaker = join(dir, "owner.json.break");
  for (const record of [JSON.stringify({ pid: 2 ** 22 + 2, startedAt: new Date().toISOString() }), null]) {
    await deadRecord(dir);
    await mkdir(breaker);
    if (record) await writeFile(join(breaker, "owner.json"), record);
    else await utimes(breaker, new Date(Date.now() - 10_000), new Date(Date.now() - 10_000));
    const a = claimant(t, dir, "a");
    assert.equal((await a.done).stdout, "took\n", String(record));
    assert.equal(await ownerPid(dir), a.flow, String(record));
    await noneLeft(dir);
  }
});

test("the teardown's clear_dead_lock, having judged a decision lock's holder gone, never removes the fresh lock a live taker made there meanwhile", async (t) => {
  const { dir } = await preparedBottle(t);
  const sig = await tempDir(t);
  const lock = join(dir, "supervise.lock");
  await mkdir(lock);
  await writeFile(join(lock, "owner.json"), JSON.stringify({ pid: 2 ** 22 + 2, startedAt: new Date().toISOString() }) + "\n");
  // It stops once it has first judged the lock (its holder gone), before it acts on that.
  const script = `${pausedJudge('"$LOCK"')}
clear_dead_lock "$LOCK"`;
  // Meanwhile a bb-supervise clears the left lock and takes it (lib/dir-lock.ts).
  const { done, fresh } = await swapWhileJudged(t, lock, sig, script, { LOCK: lock });
  assert.equal((await done).code, 0, (await done).stderr);
  assert.equal(await readFile(join(lock, "owner.json"), "utf8").catch(() => "gone"), fresh, "the live taker's lock was removed");
  assert.ok(!existsSync(`${lock}.break`), "the lock's breaker was left");
});

test("a resume takes over a dead flow's bottle whose record's breaker holds a `reaping` left by a TypeScript removal that is over, in a process that lives on (a taker killed after it)", async (t) => {
  const { dir } = await preparedBottle(t);
  await deadRecord(dir);
  // This test's own process is the remover: it stays alive throughout.
  await leaveReaping(t, join(dir, "owner.json.break"));
  const a = claimant(t, dir, "a");
  assert.equal((await a.done).stdout, "took\n", (await a.done).stderr);
  assert.equal(await ownerPid(dir), a.flow);
  await noneLeft(dir);
});

test("claimOwner() takes over a dead flow's bottle whose record's breaker holds a `reaping` a resume left, once that resume's removal is over though its shell lives on (a taker killed after it)", async (t) => {
  const { dir } = await preparedBottle(t);
  const sig = await tempDir(t);
  await deadRecord(dir);
  const breaker = await leftBreaker(dir);
  // The shell tries the breaker once, judged dead; meanwhile a live taker takes a fresh one
  // there, so the shell leaves its `reaping` in it. The shell then stays until $SIG/end.
  const script = `${pausedJudge('"$DIR/owner.json.break"')}
try_lock "$DIR/owner.json.break" && echo took || echo left
: > "$SIG/tried"
until [ -e "$SIG/end" ]; do sleep 0.01; done`;
  const { done, taker } = await swapWhileJudged(t, breaker, sig, script, { DIR: dir });
  t.after(() => writeFile(join(sig, "end"), "").catch(() => {}));
  await until("the shell's try of the breaker", () => existsSync(join(sig, "tried")), { timeoutMs: 30_000 });
  assert.ok(existsSync(join(breaker, "reaping")), "the shell left no reaping in the fresh breaker");
  process.kill(taker, "SIGKILL");
  await until("the taker gone", () => !ownerAlive({ pid: taker, startedAt: "" }), { timeoutMs: 30_000 });
  const flow = sleeper(t);
  assert.equal((await claimOwner(dir, flow)).pid, flow);
  await writeFile(join(sig, "end"), "");
  assert.equal((await done).stdout, "left\n", (await done).stderr);
  await noneLeft(dir);
});

test("without BASHPID (macOS's bash 3.2 has none), the breakers flow-owner.sh takes name the shell that took them, a subshell its own pid", async (t) => {
  const locks = await tempDir(t);
  const script = `. "$REPO/scripts/flow-owner.sh"
unset BASHPID
echo "main $$ [\${BASHPID:-}]"
try_lock "$L/main.break"
( try_lock "$L/sub.break" && : > "$L/ready"; exec sleep 60 ) &
echo "sub $!"
until [ -e "$L/ready" ]; do sleep 0.01; done
cat "$L/sub.break/owner.json"
kill $!`;
  const r = await run(["bash", "-c", script], { env: { REPO, L: locks }, expect: ANY_EXIT, timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  const [main, sub, subRecord] = r.stdout.split("\n");
  const mainPid = Number(/^main (\d+) \[\]$/.exec(main)?.[1]);
  const subPid = Number(/^sub (\d+)$/.exec(sub)?.[1]);
  assert.ok(mainPid > 0 && subPid > 0 && mainPid !== subPid, r.stdout);
  assert.equal((await readOwnerFile(join(locks, "main.break", "owner.json")))?.pid, mainPid, "the main shell's breaker names another process");
  assert.equal(JSON.parse(subRecord).pid, subPid, "the subshell's breaker names another process");
});
