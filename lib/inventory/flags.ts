// Flags bb-list and bb-cleanup share, parsed the same way in both.
import { BbError } from "../errors.ts";

export const FILTER_LABEL_HELP =
  "only docker resources that also carry label KEY=VALUE, and state dirs of no bottle with resources outside that (repeatable; to scope to one CI job or test run on a shared engine)";

/** commander reducer for a repeatable --filter-label KEY=VALUE. */
export function collectLabel(text: string, acc: Record<string, string> = {}): Record<string, string> {
  const i = text.indexOf("=");
  if (i <= 0) throw new BbError("USAGE", `--filter-label ${JSON.stringify(text)}: expected KEY=VALUE`);
  return { ...acc, [text.slice(0, i)]: text.slice(i + 1) };
}
