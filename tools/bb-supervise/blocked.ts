// What `bb-supervise blocked` prints: the firewall's record of refusals (lib/blocked-record.ts)
// as a table for people or JSON for scripts. Hosts, samples and even the rules went through
// a file the bundle writes, so every cell is made printable again here, as in `list`.
import { BLOCKED_LIMITS, BLOCKED_VERSION, CONTENT_FIRST_KEYS, CONTENT_KEYS_PER_RULE, type BlockedRecord } from "../../lib/blocked-record.ts";
import { fitColumns, printable } from "../../lib/printable.ts";
import { aligned, safeJson, shownTime } from "./table.ts";

/** The record when there is none yet: nothing refused, or no bundle has run. */
export function emptyRecord(): BlockedRecord {
  return { version: BLOCKED_VERSION, limits: { ...BLOCKED_LIMITS, contentPerRule: CONTENT_KEYS_PER_RULE, contentFirsts: CONTENT_FIRST_KEYS }, updatedAt: new Date(0).toISOString(), entries: [], others: { count: 0, firstSeen: null, lastSeen: null } };
}

export function formatBlockedTable(record: BlockedRecord): string {
  if (record.entries.length === 0) return "nothing refused\n";
  return aligned([
    ["HOST", "RULE", "COUNT", "FIRST SEEN", "LAST SEEN", "SAMPLE"],
    ...record.entries.map((e) => [printable(e.host), printable(e.rule), String(e.count), shownTime(e.firstSeen), shownTime(e.lastSeen), fitColumns(printable(e.sample), 80)]),
  ]);
}

export const formatBlockedJson = (record: BlockedRecord) => safeJson(record);

/** For stderr: refusals the record counted without a row, once it was full. */
export function othersText(record: BlockedRecord, bundle: string): string | null {
  const o = record.others;
  if (o.count === 0) return null;
  const span = o.firstSeen && o.lastSeen ? ` between ${shownTime(o.firstSeen)} and ${shownTime(o.lastSeen)}` : "";
  // A record written before the per-entry and keyless budgets has neither limit.
  const { gate, content, contentPerRule, contentFirsts, keyless } = record.limits;
  const firsts = contentFirsts === undefined ? "" : `, then the first of up to ${contentFirsts} more entries`;
  const perRule = contentPerRule === undefined ? "" : ` (at most ${contentPerRule} per allowlist entry${firsts})`;
  const knockers = keyless === undefined ? "" : `, and the first ${keyless} asked for by a client without the agent key`;
  return `${o.count} more refusals${span} are counted but not listed: the record keeps the first ${gate} hosts refused by name or port and the first ${content} refusals of what was sent to an allowed host${perRule}${knockers}, whatever follows; the latest are in the bundle's log (docker logs ${bundle})`;
}
