import assert from "node:assert/strict";
import { mkdir, readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test, type TestContext } from "node:test";
import { start } from "../proc.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { deadRecord, leaveReaping } from "../../tests/support/left-reaping.ts";
import { claimOwner, OWNER_FILE, ownerRecord, readOwner, tryBreaker } from "./owner.ts";

function live(t: TestContext): string {
  const child = start(["sleep", "30"], { stdio: "ignore" });
  t.after(() => child.kill("SIGKILL"));
  return JSON.stringify(ownerRecord(child.pid!)) + "\n";
}
async function aged(path: string): Promise<void> {
  const then = new Date(Date.now() - 10_000);
  await utimes(path, then, then);
}

test("tryBreaker() takes a free breaker with this process's record in it, and not one held", async (t) => {
  const lock = join(await tempDir(t), "x.break");
  assert.equal(await tryBreaker(lock), true);
  assert.equal((await readOwner(lock))?.pid, process.pid);
  assert.equal(await tryBreaker(lock), false, "took a breaker this process holds");
});

test("tryBreaker() keeps a breaker whose record names a live process, however old, and one without a record yet", async (t) => {
  const dir = await tempDir(t);
  const held = join(dir, "held.break");
  await mkdir(held);
  const record = live(t);
  await writeFile(join(held, OWNER_FILE), record);
  await aged(held);
  assert.equal(await tryBreaker(held), false);
  assert.equal(await readFile(join(held, OWNER_FILE), "utf8"), record);
  const young = join(dir, "young.break");
  await mkdir(young);
  assert.equal(await tryBreaker(young), false);
});

test("tryBreaker() takes a breaker its holder left: a dead process's record, no record past 2 s, or a remover of it that died too", async (t) => {
  const dir = await tempDir(t);
  const cases: Record<string, (lock: string) => Promise<void>> = {
    "dead record": (lock) => writeFile(join(lock, OWNER_FILE), deadRecord()),
    "no record, old": aged,
    "a dead remover's reaping inside": async (lock) => {
      await writeFile(join(lock, OWNER_FILE), deadRecord());
      await mkdir(join(lock, "reaping"));
      await writeFile(join(lock, "reaping", OWNER_FILE), deadRecord());
    },
  };
  for (const [name, make] of Object.entries(cases)) {
    const lock = join(dir, `${name.replace(/\W+/g, "-")}.break`);
    await mkdir(lock);
    await make(lock);
    assert.equal(await tryBreaker(lock), true, name);
    assert.equal((await readOwner(lock))?.pid, process.pid, name);
  }
});

test("tryBreaker() takes a breaker whose taker was killed after a remover in this process, since done, left its `reaping` there: this process lives on, but that removal is over", async (t) => {
  const lock = join(await tempDir(t), "x.break");
  await leaveReaping(t, lock);
  assert.equal(await tryBreaker(lock), true, "the left reaping kept the breaker");
  assert.equal((await readOwner(lock))?.pid, process.pid);
  assert.deepEqual(await readdir(lock), [OWNER_FILE], "the left reaping stayed in the breaker taken");
});

test("claimOwner() takes over a dead flow's bottle whose record's breaker holds a `reaping` a finished removal of this process left", async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, OWNER_FILE), deadRecord());
  await leaveReaping(t, join(dir, `${OWNER_FILE}.break`));
  const flow = live(t);
  const claimed = await claimOwner(dir, JSON.parse(flow).pid);
  assert.equal(claimed.pid, JSON.parse(flow).pid);
  assert.deepEqual(await readdir(dir), [OWNER_FILE]);
});
