// smolvm keeps each machine's configuration as a JSON document in a SQLite file (table
// `vms`, column `data`, keyed by `name`) and reads it again at `machine start`. Releases
// before 1.8.0 drop `--allow-cidr` when the machine is created `--from` an artifact (0.8.0
// stores `allowed_cidrs: null`), so the driver writes the allowlist into that row between
// create and start and reads it back to be sure.
//
// Node 20 has no built-in SQLite, so this goes through the `sqlite3` CLI. No value is ever
// spliced into SQL as text: the machine name and the document travel as hex literals
// (X'..', only [0-9A-F] inside), and the document is written back as a BLOB because smolvm
// misreads a TEXT value there.
import { Buffer } from "node:buffer";
import { homedir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { BbError } from "../errors.ts";
import { run } from "../proc.ts";

interface StateDbLocation {
  platform?: string;
  home?: string;
  /** Environment to read XDG_DATA_HOME from (Linux). */
  env?: Record<string, string | undefined>;
}

/**
 * Where smolvm keeps its state DB: `~/Library/Application Support/smolvm/server/smolvm.db`
 * on macOS, `$XDG_DATA_HOME/smolvm/server/smolvm.db` (default `~/.local/share`) elsewhere.
 */
export function stateDbPath(loc: StateDbLocation = {}): string {
  const platform = loc.platform ?? process.platform;
  const env = loc.env ?? process.env;
  const home = loc.home ?? env.HOME ?? homedir();
  if (platform === "darwin") return join(home, "Library", "Application Support", "smolvm", "server", "smolvm.db");
  const xdg = env.XDG_DATA_HOME;
  const dataHome = xdg && xdg.startsWith("/") ? xdg : join(home, ".local", "share");
  return join(dataHome, "smolvm", "server", "smolvm.db");
}

function hexLiteral(text: string): string {
  return `X'${Buffer.from(text, "utf8").toString("hex").toUpperCase()}'`;
}

interface StateDbOptions {
  dbPath: string;
  /** The sqlite3 CLI (default "sqlite3" on PATH). */
  sqlite3?: string;
}

async function sql(opts: StateDbOptions, script: string, what: string): Promise<string> {
  // `-init /dev/null`: not the user's ~/.sqliterc, whose `.headers on` or `.mode` would
  // change the output read here (a header line decoded as hex is no document at all).
  const r = await run([opts.sqlite3 ?? "sqlite3", "-init", "/dev/null", "-batch", "-bail", opts.dbPath], {
    input: `.timeout 5000\n${script}\n`,
    errorCode: "SMOLVM",
    what,
  });
  return r.stdout;
}

/** The machine's JSON document from the state DB; throws NOT_FOUND when there is no row. */
export async function readMachineRecord(opts: StateDbOptions & { name: string }): Promise<Record<string, unknown>> {
  const what = `Cannot read machine ${opts.name} from smolvm's state DB ${opts.dbPath}`;
  const out = await sql(opts, `SELECT hex(data) FROM vms WHERE name = CAST(${hexLiteral(opts.name)} AS TEXT);`, what);
  const hex = out.trim();
  if (!hex) throw new BbError("NOT_FOUND", `${what}: no row for it in table vms (was it created?)`, { details: { dbPath: opts.dbPath } });
  const text = Buffer.from(hex, "hex").toString("utf8");
  try {
    const doc = JSON.parse(text) as unknown;
    if (doc && typeof doc === "object" && !Array.isArray(doc)) return doc as Record<string, unknown>;
  } catch (e) {
    throw new BbError("SMOLVM", `${what}: its data column is not JSON`, { cause: e, details: { dbPath: opts.dbPath } });
  }
  throw new BbError("SMOLVM", `${what}: its data column is not a JSON object`, { details: { dbPath: opts.dbPath } });
}

/** True when `a` is exactly the list `b`, in order. */
export function sameList(a: unknown, b: string[]): boolean {
  return Array.isArray(a) && a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Set `allowed_cidrs` in the machine's row (between `machine create` and `machine start`),
 * then read the row back and fail unless it holds exactly `cidrs`. Returns the new document.
 */
export async function writeAllowlist(opts: StateDbOptions & { name: string; cidrs: string[] }): Promise<Record<string, unknown>> {
  const doc = await readMachineRecord(opts);
  const patched = { ...doc, allowed_cidrs: [...opts.cidrs] };
  const what = `Cannot write the allowlist of machine ${opts.name} into smolvm's state DB ${opts.dbPath}`;
  const out = await sql(
    opts,
    `UPDATE vms SET data = ${hexLiteral(JSON.stringify(patched))} WHERE name = CAST(${hexLiteral(opts.name)} AS TEXT);\nSELECT changes();`,
    what,
  );
  if (out.trim() !== "1") throw new BbError("SMOLVM", `${what}: expected to update 1 row, updated ${out.trim() || "none"}`);
  const back = await readMachineRecord(opts);
  if (!sameList(back.allowed_cidrs, opts.cidrs)) {
    throw new BbError("SMOLVM", `${what}: read back allowed_cidrs=${JSON.stringify(back.allowed_cidrs)}, expected ${JSON.stringify(opts.cidrs)}`, {
      details: { dbPath: opts.dbPath },
    });
  }
  return back;
}
