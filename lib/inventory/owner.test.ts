import assert from "node:assert/strict";
import { mkdir, readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { start } from "../proc.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { zombie } from "../../tests/support/zombie.ts";
import type { BbError } from "../errors.ts";
import { claimOwner, OWNER_FILE, ownerAlive, ownerRecord, procStartTime, readOwner, releaseOwner, writeOwner } from "./owner.ts";

const onLinux = process.platform === "linux";

test("writeOwner() records pid, start time and (on Linux) the process start time; readOwner() reads it back", async (t) => {
  const dir = await tempDir(t);
  const written = await writeOwner(dir, process.pid, new Date("2026-05-27T18:00:00Z"));
  const raw = JSON.parse(await readFile(join(dir, OWNER_FILE), "utf8"));
  assert.equal(raw.pid, process.pid);
  assert.equal(raw.startedAt, "2026-05-27T18:00:00.000Z");
  if (onLinux) assert.match(raw.procStart, /^\d+$/);
  assert.deepEqual(await readOwner(dir), written);
  assert.equal(ownerAlive(written), true);
});

test("ownerAlive() is false once the owner process has exited", async () => {
  const child = start(["sleep", "30"], { stdio: "ignore" });
  const owner = { pid: child.pid!, startedAt: new Date().toISOString(), procStart: procStartTime(child.pid!) ?? undefined };
  assert.equal(ownerAlive(owner), true);
  child.kill("SIGKILL");
  await new Promise((resolve) => child.on("close", resolve));
  assert.equal(ownerAlive(owner), false);
});

test("ownerAlive() is false for a reused pid: the process there started at another time", skipWhen(!onLinux && "needs /proc (Linux)", "ownerAlive() of a reused pid"), () => {
  const real = procStartTime(process.pid)!;
  assert.equal(ownerAlive({ pid: process.pid, startedAt: "x", procStart: real }), true);
  assert.equal(ownerAlive({ pid: process.pid, startedAt: "x", procStart: String(Number(real) + 1) }), false);
});

test("readOwner() takes a record a shell wrote without procStart, and returns null for a missing or broken file", async (t) => {
  const dir = await tempDir(t);
  assert.equal(await readOwner(dir), null);
  await writeFile(join(dir, OWNER_FILE), `{"pid":${process.pid},"startedAt":"2026-05-27T18:00:00Z"}\n`);
  const owner = await readOwner(dir);
  assert.deepEqual(owner, { pid: process.pid, startedAt: "2026-05-27T18:00:00Z" });
  assert.equal(ownerAlive(owner!), true);
  for (const broken of ["{", '{"pid":"12"}', '{"pid":-1,"startedAt":"x"}']) {
    await writeFile(join(dir, OWNER_FILE), broken);
    assert.equal(await readOwner(dir), null, broken);
  }
});

test("a zombie owner (its start flow killed, not yet reaped) counts as dead", async (t) => {
  const pid = await zombie(t);
  assert.equal(ownerAlive({ pid, startedAt: new Date().toISOString() }), false);
});

/** A live process that is not this one: a claim by another start flow. */
function otherFlow(t: { after: (fn: () => void) => void }): number {
  const child = start(["sleep", "30"], { stdio: "ignore" });
  t.after(() => child.kill("SIGKILL"));
  return child.pid!;
}

test("claimOwner() takes a bottle nobody holds, stands for the same process again, and refuses one a live flow holds with BUSY naming it", async (t) => {
  const dir = await tempDir(t);
  const mine = await claimOwner(dir, process.pid);
  assert.deepEqual(await readOwner(dir), mine);
  assert.deepEqual(await claimOwner(dir, process.pid), mine, "the holder's own second claim");
  const other = otherFlow(t);
  await assert.rejects(claimOwner(dir, other), (e: BbError) => {
    assert.equal(e.code, "BUSY");
    assert.match(e.message, new RegExp(`belongs to another start flow \\(pid ${process.pid}, since ${mine.startedAt}\\)`));
    return true;
  });
  assert.deepEqual(await readOwner(dir), mine, "a refused claim changed the record");
  assert.deepEqual((await readdir(dir)).sort(), [OWNER_FILE], "a claim left a temp file");
  await releaseOwner(dir, other);
  assert.deepEqual(await readOwner(dir), mine, "released by a flow that does not hold it");
  await releaseOwner(dir, process.pid);
  assert.equal(await readOwner(dir), null);
});

test("claimOwner() replaces the record of a flow that is gone, or a broken one", async (t) => {
  const dir = await tempDir(t);
  const gone = { pid: 2 ** 22 + 1, startedAt: "2026-05-27T18:00:00.000Z" };
  for (const stale of [JSON.stringify(gone), "{"]) {
    await writeFile(join(dir, OWNER_FILE), stale);
    const claimed = await claimOwner(dir, process.pid);
    assert.deepEqual(await readOwner(dir), claimed, stale);
    await releaseOwner(dir, process.pid);
  }
});

test("claimOwner(): of many flows claiming one bottle at the same moment, exactly one gets it, fresh or over a dead flow's record", async (t) => {
  const flows = Array.from({ length: 6 }, () => otherFlow(t));
  for (const stale of [null, JSON.stringify({ pid: 2 ** 22 + 1, startedAt: "2026-05-27T18:00:00.000Z" })]) {
    for (let round = 0; round < 10; round++) {
      const dir = await tempDir(t);
      if (stale) await writeFile(join(dir, OWNER_FILE), stale);
      const results = await Promise.allSettled(flows.map((pid) => claimOwner(dir, pid)));
      const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [flows[i]] : []));
      assert.equal(won.length, 1, `${stale ? "over a dead record" : "fresh"}, round ${round}: ${won.length} claims succeeded`);
      for (const r of results) if (r.status === "rejected") assert.equal((r.reason as BbError).code, "BUSY", String(r.reason));
      assert.equal((await readOwner(dir))?.pid, won[0]);
      assert.deepEqual(await readdir(dir), [OWNER_FILE]);
    }
  }
});

test("claimOwner() leaves the record's breaker be while a live process holds it (scripts/flow-owner.sh's take_over, its record inside), however old the breaker", async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, OWNER_FILE), JSON.stringify({ pid: 2 ** 22 + 1, startedAt: "2026-05-27T18:00:00.000Z" }));
  const breaker = join(dir, `${OWNER_FILE}.break`);
  await mkdir(breaker);
  const held = JSON.stringify(ownerRecord(otherFlow(t))) + "\n";
  await writeFile(join(breaker, OWNER_FILE), held);
  // A slow machine's take_over, 10 s in.
  const old = new Date(Date.now() - 10_000);
  await utimes(breaker, old, old);
  await assert.rejects(claimOwner(dir, otherFlow(t)), (e: BbError) => e.code === "STATE");
  assert.equal(await readFile(join(breaker, OWNER_FILE), "utf8"), held, "the live holder's breaker was removed");
});

test("claimOwner() removes a breaker its holder left: one whose record names a process that is gone, or one without a record older than 2 s", async (t) => {
  for (const record of [JSON.stringify({ pid: 2 ** 22 + 2, startedAt: new Date().toISOString() }), null]) {
    const dir = await tempDir(t);
    const breaker = join(dir, `${OWNER_FILE}.break`);
    await writeFile(join(dir, OWNER_FILE), JSON.stringify({ pid: 2 ** 22 + 1, startedAt: "2026-05-27T18:00:00.000Z" }));
    await mkdir(breaker);
    if (record) await writeFile(join(breaker, OWNER_FILE), record);
    else await utimes(breaker, new Date(Date.now() - 10_000), new Date(Date.now() - 10_000));
    const flow = otherFlow(t);
    await claimOwner(dir, flow);
    assert.equal((await readOwner(dir))?.pid, flow, String(record));
    assert.deepEqual(await readdir(dir), [OWNER_FILE], String(record));
  }
});
