// A test's skip option that also prints the reason. Deno's node:test counts a `skip` option
// as "ignored" but never prints its reason, and ignores t.skip() altogether (the test then
// counts as passed), so a reason is written here where both runtimes show it.
import process from "node:process";

/** `{ skip: reason }` when `reason` is a string (printed to stderr), else `{ skip: false }`. */
export function skipWhen(reason: string | false | null | undefined, name: string): { skip: string | false } {
  if (!reason) return { skip: false };
  process.stderr.write(`SKIP ${name}: ${reason}\n`);
  return { skip: reason };
}
