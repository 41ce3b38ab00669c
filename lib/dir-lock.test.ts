import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { withDirLock, type DirLockOptions } from "./dir-lock.ts";
import { OWNER_FILE, ownerRecord, readOwner, type Owner } from "./inventory/owner.ts";
import { start } from "./proc.ts";
import { leaveReaping } from "../tests/support/left-reaping.ts";
import { tempDir } from "../tests/support/tmp.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(5)) if (await ok()) return;
  throw new Error(`never: ${what}`);
}

test("a taker that judged a holder gone while the lock changed hands removes no lock a live taker holds (the breaker, 625fb12), and holders never overlap", async (t) => {
  // Four takers in one process, told apart by their records' startedAt; `t1` judges each
  // holder's life through a check the test holds open until that holder has released and
  // the next one holds the lock (at most a second). Where `t1` then removes what it judged
  // abandoned, it removes the next holder's lock and enters beside it. The records are a
  // millisecond apart at least: each taker starts after the one before holds.
  const lock = join(await tempDir(t), "l.lock");
  const opts: DirLockOptions = { waitMs: 30_000, staleMs: 60_000, busy: () => new Error("busy") };
  const inside = new Set<string>();
  const overlaps: string[] = [];
  const released = new Set<string>();
  const stamps = new Map<string, string>(); // startedAt -> taker
  const body = (name: string, ms: number) => async () => {
    stamps.set((await readOwner(lock))!.startedAt, name);
    if (inside.size) overlaps.push(`${name} entered while ${[...inside].join(", ")} held the lock`);
    inside.add(name);
    await sleep(ms);
    inside.delete(name);
  };
  const take = (name: string, ms: number, extra: Partial<DirLockOptions> = {}) =>
    withDirLock(lock, { ...opts, ...extra }, body(name, ms)).then(() => void released.add(name));
  const holder = async () => stamps.get((await readOwner(lock))?.startedAt ?? "");
  let checks = 0;
  const holderAlive = async (h: Owner) => {
    checks++;
    const name = stamps.get(h.startedAt)!;
    await until("the lock changed hands", async () => released.has(name) && (await holder()) !== undefined && (await holder()) !== name, 1_000).catch(() => {});
    return !released.has(name);
  };

  const h1 = take("h1", 150);
  await until("h1 holds", async () => (await holder()) === "h1");
  const t1 = take("t1", 200, { holderAlive });
  await until("t1 judges h1", () => checks === 1);
  const h2 = take("h2", 300);
  // From here a lock without its breaker goes astray: the overlap below then says how.
  const astray = () => {};
  await until("h2 holds", async () => (await holder()) === "h2").catch(astray);
  // t1 now judges h2 (its second look, under the breaker); h3 waits behind h2.
  await until("t1 judges h2", () => checks === 2, 2_000).catch(astray);
  const h3 = take("h3", 300);
  const results = await Promise.allSettled([h1, t1, h2, h3]);
  assert.deepEqual(results.filter((r) => r.status === "rejected"), []);
  assert.deepEqual(overlaps, []);
  assert.equal(existsSync(lock), false);
});

test("withDirLock() waits while the lock's holder lives, and once it is killed clears its lock through a breaker that holds a `reaping` a finished removal of this process left (its taker killed too)", async (t) => {
  const lock = join(await tempDir(t), "l.lock");
  const holder = start(["sleep", "60"], { stdio: "ignore" });
  t.after(() => void holder.kill("SIGKILL"));
  await mkdir(lock);
  await writeFile(join(lock, OWNER_FILE), JSON.stringify(ownerRecord(holder.pid!)) + "\n");
  await leaveReaping(t, `${lock}.break`);
  let waited: Owner | null = null;
  let ran = false;
  const taken = withDirLock(lock, { waitMs: 60_000, staleMs: 60_000, busy: () => new Error("busy"), onWait: (h) => (waited = h) }, async () => {
    ran = true;
  });
  let settled = false;
  taken.finally(() => (settled = true)).catch(() => {});
  await until("the taker waiting for the live holder", () => waited !== null);
  assert.equal((waited as Owner | null)?.pid, holder.pid);
  assert.equal(ran, false, "ran while a live process held the lock");
  holder.kill("SIGKILL");
  await until("the lock taken once its holder was killed, and given back", () => settled, 15_000);
  await taken;
  assert.equal(ran, true);
  assert.equal(existsSync(lock), false, "the lock was left");
  assert.equal(existsSync(`${lock}.break`), false, "its breaker was left");
});
