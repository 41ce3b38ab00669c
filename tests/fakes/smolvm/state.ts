// The stand-in's machine store: the same SQLite file, table and column smolvm uses
// (`vms`, JSON document in a BLOB `data` column, keyed by `name`) at the same path under
// HOME, so the driver's allowlist patch is exercised against a real SQLite file. Written
// separately from lib/smolvm/state-db.ts on purpose: a wrong path or encoding in the
// driver shows up as a mismatch here instead of being shared.
import { Buffer } from "node:buffer";
import { mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { run } from "../../../lib/proc.ts";

export interface MachineRecord {
  name: string;
  state: "created" | "running" | "stopped";
  pid: number | null;
  image: string | null;
  /** The artifact given to --from. */
  source: string;
  network: boolean;
  allowed_cidrs: string[] | null;
  env: string[];
  cpus: number;
  memory_mib: number;
  created_at: string;
  /** Stand-in only: the docker container playing the VM. */
  container: string | null;
}

export class FakeError extends Error {}

export function dbPath(home = process.env.HOME || homedir()): string {
  if (process.platform === "darwin") return join(home, "Library/Application Support/smolvm/server/smolvm.db");
  const xdg = process.env.XDG_DATA_HOME;
  return join(xdg && xdg.startsWith("/") ? xdg : join(home, ".local/share"), "smolvm/server/smolvm.db");
}

const hex = (s: string) => `X'${Buffer.from(s, "utf8").toString("hex")}'`;

async function sql(script: string, home?: string): Promise<string> {
  const path = dbPath(home);
  mkdirSync(dirname(path), { recursive: true });
  const r = await run(["sqlite3", "-batch", "-bail", path], {
    input: `.timeout 10000\nCREATE TABLE IF NOT EXISTS vms (name TEXT PRIMARY KEY, data BLOB NOT NULL);\n${script}\n`,
  });
  return r.stdout;
}

function decode(name: string, type: string, hexData: string): MachineRecord {
  // smolvm misreads a row whose document was written back as TEXT; so does the stand-in.
  if (type !== "blob") throw new FakeError(`failed to load machine '${name}': record data is ${type}, expected blob`);
  try {
    return JSON.parse(Buffer.from(hexData, "hex").toString("utf8")) as MachineRecord;
  } catch {
    throw new FakeError(`failed to load machine '${name}': record data is not valid JSON`);
  }
}

export async function getMachine(name: string): Promise<MachineRecord | null> {
  const out = (await sql(`SELECT typeof(data) || '|' || hex(data) FROM vms WHERE name = CAST(${hex(name)} AS TEXT);`)).trim();
  if (!out) return null;
  const [type, data] = out.split("|") as [string, string];
  return decode(name, type, data);
}

export async function requireMachine(name: string): Promise<MachineRecord> {
  const m = await getMachine(name);
  if (!m) throw new FakeError(`machine '${name}' not found`);
  return m;
}

/** Every machine (of this HOME, or of `home` when a test harness asks). */
export async function listMachines(home?: string): Promise<MachineRecord[]> {
  const out = await sql(`SELECT hex(name) || '|' || typeof(data) || '|' || hex(data) FROM vms ORDER BY name;`, home);
  return out
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [n, type, data] = line.split("|") as [string, string, string];
      return decode(Buffer.from(n, "hex").toString("utf8"), type, data);
    });
}

export async function putMachine(m: MachineRecord): Promise<void> {
  await sql(`INSERT OR REPLACE INTO vms (name, data) VALUES (CAST(${hex(m.name)} AS TEXT), ${hex(JSON.stringify(m))});`);
}

export async function deleteMachine(name: string): Promise<void> {
  await sql(`DELETE FROM vms WHERE name = CAST(${hex(name)} AS TEXT);`);
}
