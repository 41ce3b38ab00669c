// A zombie process for the tests of the owner rule: a child that has exited and that its
// parent never reaps, as a killed start flow's pid looks until someone waits for it.
import assert from "node:assert/strict";
import type { Buffer } from "node:buffer";
import type { TestContext } from "node:test";
import { procState } from "../../lib/inventory/owner.ts";
import { start } from "../../lib/proc.ts";

/** The pid of a zombie that stays one until the test ends (Linux: it is read in /proc).
 * perl forks a child that exits at once and never reaps it (a shell may reap its own
 * background job before it exec's, so `sh -c 'sleep 0 & exec sleep 5'` is not reliable). */
export async function zombie(t: TestContext): Promise<number> {
  const parent = start(["perl", "-e", '$| = 1; my $p = fork() // die; exit 0 unless $p; print "$p\\n"; sleep 60'], { stdio: ["ignore", "pipe", "ignore"] });
  t.after(() => void parent.kill("SIGKILL"));
  const pid = await new Promise<number>((resolve) => parent.stdout!.once("data", (b: Buffer) => resolve(Number(String(b).trim()))));
  for (let i = 0; i < 100 && procState(pid) !== "Z"; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(procState(pid), "Z", `the unreaped child ${pid} never became a zombie`);
  return pid;
}
