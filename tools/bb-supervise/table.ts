// The `bb-supervise list` table for people (scripts use --json).
import type { QueueRequest } from "../../lib/supervise/queue.ts";

function what(r: QueueRequest): string {
  if (r.kind === "host") {
    const host = `${r.host}${r.tlsPassthrough ? " (tls passthrough)" : ""}`;
    return r.reason ? `${host}: ${r.reason}` : host;
  }
  return r.question ?? "";
}

function oneLine(text: string, max = 100): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export function formatTable(requests: QueueRequest[]): string {
  if (requests.length === 0) return "no requests\n";
  const rows = [
    ["ID", "KIND", "STATUS", "CREATED", "REQUEST"],
    ...requests.map((r) => [r.id, r.kind, r.status, r.createdAt.replace("T", " ").replace(/\.\d+Z$/, "Z"), oneLine(what(r))]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join("\n") + "\n";
}
