// What list and cleanup print: JSON rows for scripts, aligned text for people. The text
// quotes what docker labels, state dirs and plans say (an agent's name, a state root, an
// owner record's time), which a look-alike container's image or a hand-edited file can
// fill with anything: every cell is made printable (lib/printable.ts), so none can move the
// cursor, clear a line or start a new one, and hide or forge a row of the table or the plan.
import { printable } from "../printable.ts";
import type { Bottle } from "./classify.ts";
import { totalSize, type OurImage } from "../images/stale.ts";
import type { Removal, RemovalResult } from "./remove.ts";

/** One bottle as `bb-list --json` prints it. */
export interface ListRow {
  backend: string | null;
  slug: string;
  agent: string | null;
  services: string[];
  startedAt: string | null;
  status: Bottle["status"];
  live: boolean;
  why: string;
  stateDir: string | null;
  /** The state root its resources name when it is not this one (status "elsewhere"). */
  otherStateRoot: string | null;
  owner: { pid: number; startedAt: string; alive: boolean } | null;
  containers: { name: string; role: string; state: string }[];
  networks: { name: string; role: string }[];
  volumes: { name: string; role: string }[];
  machines: { name: string; state: string }[];
  /** smolmachines: the host loopback address the bundle publishes on. */
  loopbackAddr: string | null;
}

export function listRow(b: Bottle): ListRow {
  const owner = b.dir?.owner;
  return {
    backend: b.backend,
    slug: b.slug,
    agent: b.agent,
    services: b.services,
    startedAt: b.startedAt,
    status: b.status,
    live: b.live,
    why: b.why,
    stateDir: b.dir?.path ?? null,
    otherStateRoot: b.elsewhere,
    owner: owner ? { pid: owner.pid, startedAt: owner.startedAt, alive: b.dir!.ownerAlive } : null,
    containers: b.containers.map((c) => ({ name: c.name, role: c.role, state: c.state })),
    networks: b.networks.map((n) => ({ name: n.name, role: n.role })),
    volumes: b.volumes.map((v) => ({ name: v.name, role: v.role })),
    machines: b.machines.map((m) => ({ name: m.name, state: m.state })),
    loopbackAddr: b.dir?.plan?.bundle?.loopbackAddr ?? null,
  };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function leftovers(r: ListRow): string {
  const parts = [
    r.containers.length ? plural(r.containers.length, "container") : "",
    r.networks.length ? plural(r.networks.length, "network") : "",
    r.volumes.length ? plural(r.volumes.length, "volume") : "",
    r.machines.length ? plural(r.machines.length, "machine") : "",
    r.stateDir ? "state dir" : "",
  ].filter(Boolean);
  return parts.join(", ") || "-";
}

/** ISO time without fractions ("2026-05-27T18:00:00Z"): enough for people, still sortable. */
function shortTime(iso: string): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : new Date(t).toISOString().replace(/\.\d+Z$/, "Z");
}

/** Columns padded to their widest cell; the last column is not padded. */
function table(header: string[], cells: string[][]): string {
  const rows = cells.map((r) => r.map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ") + "\n";
  return line(header) + rows.map(line).join("");
}

/** The `bb-list` table; with `all`, a column naming what each bottle has left. */
export function listTable(rows: ListRow[], opts: { all?: boolean } = {}): string {
  const header = ["BACKEND", "SLUG", "AGENT", "SERVICES", "STARTED", "STATUS", ...(opts.all ? ["RESOURCES"] : [])];
  const cells = rows.map((r) => [
    r.backend ?? "-",
    r.slug,
    r.agent ?? "-",
    r.services.join(",") || "-",
    r.startedAt ? shortTime(r.startedAt) : "-",
    // A slug can be a bottle of this root and of another: say which row is the other's.
    r.otherStateRoot === null ? r.status : `${r.status} (state root ${r.otherStateRoot})`,
    ...(opts.all ? [leftovers(r)] : []),
  ]);
  return table(header, cells);
}

/** The removal plan for people, grouped by bottle. */
export function planText(removals: Removal[]): string {
  const out: string[] = [];
  for (const r of removals) {
    const head = [r.backend, r.agent].filter(Boolean).join(", ");
    out.push(printable(`${r.slug}${head ? ` (${head})` : ""}: ${r.live ? "LIVE, " : ""}${r.why}`));
    const rows: string[][] = [
      ...r.machines.map((m) => ["machine", m.name, m.running ? "running" : ""]),
      ...r.containers.map((c) => ["container", c.name, [c.role, c.running ? "running" : ""].filter(Boolean).join(", ")]),
      ...r.networks.map((n) => ["network", n.name, ""]),
      ...r.volumes.map((v) => ["volume", v.name, ""]),
      ...(r.stateDir ? [["state dir", r.stateDir, ""]] : []),
    ].map((row) => row.map(printable));
    const widths = [0, 1].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
    for (const row of rows) out.push(`  ${row[0]!.padEnd(widths[0]!)}  ${row[1]!.padEnd(widths[1]!)}  ${row[2]}`.trimEnd());
  }
  return out.join("\n") + "\n";
}

/** The stale-images part of the cleanup plan. */
export function imagesText(images: OurImage[]): string {
  const rows = images.map((i) => [i.ref ?? `${i.id.slice(0, 19)} (untagged)`, i.size, `built ${i.created}`]);
  const widths = [0, 1].map((c) => Math.max(...rows.map((row) => row[c]!.length)));
  return [`images no bottle here uses (built for an older checkout; ${totalSize(images)} in all):`, ...rows.map((row) => `  image  ${row[0]!.padEnd(widths[0]!)}  ${row[1]!.padStart(widths[1]!)}  ${row[2]}`)].join("\n") + "\n";
}

/** One line per removal step, for the log as it happens. */
export function resultLine(res: RemovalResult): string {
  return res.ok ? `removed ${res.kind} ${res.name}` : `could not remove ${res.kind} ${res.name}${res.slug ? ` (${res.slug})` : ""}: ${res.error}`;
}
