// A FIFO where bot-bottle expects a file, for the tests that it is refused rather than
// waited on: opening one for reading waits for a writer, Ctrl-C and all.
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import type { TestContext } from "node:test";
import { run } from "../../lib/proc.ts";
import { until } from "./until.ts";

/** Make a FIFO at `path`; whatever still waits on it is let go when the test ends (a FIFO
 * opened read-write never waits), so a run that failed by waiting ends too. */
export async function fifo(t: TestContext, path: string): Promise<void> {
  await run(["mkfifo", path]);
  t.after(async () => (await open(path, constants.O_RDWR | constants.O_NONBLOCK).catch(() => null))?.close());
}

/** What `p` settles with (its error, rejected), failing the test if it has not within 15 s. */
export async function settled(what: string, p: Promise<unknown>): Promise<unknown> {
  let out: { v: unknown } | null = null;
  p.then((v) => (out = { v }), (e: unknown) => (out = { v: e }));
  await until(what, () => out !== null, { timeoutMs: 15_000 });
  return out!.v;
}
