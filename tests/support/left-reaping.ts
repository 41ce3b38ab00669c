// The breaker a TypeScript remover's `reaping` is left in (lib/inventory/owner.ts reap): the
// remover judged a breaker left (its record a dead process's), another taker, a live
// process, put a fresh one in its place meanwhile, so the remover left its `reaping` in that
// one; then that taker was killed too. The remover is this test's own process, still
// running: its pid alone says its `reaping` is held.
import assert from "node:assert/strict";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { OWNER_FILE, ownerRecord, tryBreaker } from "../../lib/inventory/owner.ts";
import { start } from "../../lib/proc.ts";

/** A record naming a process that is gone (a pid above Linux's and macOS's limits). */
export const deadRecord = () => JSON.stringify({ pid: 2 ** 22 + 2, startedAt: new Date().toISOString() }) + "\n";

/** Leaves the breaker `lock` as described above: a dead taker's record, and this process's
 * `reaping`, its removal over, inside. */
export async function leaveReaping(t: TestContext, lock: string): Promise<void> {
  await mkdir(lock);
  await writeFile(join(lock, OWNER_FILE), deadRecord());
  const taker = start(["sleep", "60"], { stdio: "ignore" });
  t.after(() => void taker.kill("SIGKILL"));
  const gone = new Promise((r) => taker.on("close", r));
  const fresh = JSON.stringify(ownerRecord(taker.pid!)) + "\n";
  const took = await tryBreaker(lock, async () => {
    await rm(lock, { recursive: true });
    await mkdir(lock);
    await writeFile(join(lock, OWNER_FILE), fresh);
  });
  assert.equal(took, false, "took the breaker a live taker holds");
  assert.equal(await readFile(join(lock, OWNER_FILE), "utf8"), fresh, "removed the breaker a live taker holds");
  taker.kill("SIGKILL");
  await gone;
}
