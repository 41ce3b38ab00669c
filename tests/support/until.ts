// Waiting in a test for the state it needs, not for a time: a loaded machine (CI's two
// cores, shared) makes everything slower, so a test waits on the event itself, with a
// bound generous enough that only something that never comes reaches it.

/** Polls `ok` every `everyMs` until it holds; past `timeoutMs` throws "never saw <what>",
 * followed by what `why` says of the state then (the log, the output so far). */
export async function until(
  what: string,
  ok: () => boolean | Promise<boolean>,
  opts: { timeoutMs?: number; everyMs?: number; why?: () => string | Promise<string> } = {},
): Promise<void> {
  const { timeoutMs = 30_000, everyMs = 20 } = opts;
  for (const end = Date.now() + timeoutMs; !(await ok()); await new Promise((r) => setTimeout(r, everyMs))) {
    if (Date.now() > end) throw new Error(`never saw ${what} within ${timeoutMs / 1000} s${opts.why ? `:\n${await opts.why()}` : ""}`);
  }
}
