// Flag parsers the benchmarks share.
import { BbError } from "../../../lib/errors.ts";

/** --runs: how many timed runs, a whole number from 1. */
export function runsFlag(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new BbError("USAGE", `--runs wants a whole number >= 1, got ${JSON.stringify(text)}`);
  return n;
}
