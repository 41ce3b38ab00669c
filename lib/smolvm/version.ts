// What differs between smolvm releases, in one table. The driver asks these questions
// instead of comparing version numbers itself, so a newly learned quirk is one line here.
import { BbError } from "../errors.ts";

export interface SmolvmVersion {
  major: number;
  minor: number;
  patch: number;
  /** As printed by `smolvm --version`, e.g. "0.8.0". */
  text: string;
}

/** The oldest release the driver knows how to talk to. */
const MIN_SUPPORTED = "0.8.0";

/** Parse `smolvm --version` output ("smolvm 0.8.1", "smolvm v1.8.0 (abc123)", "1.0.2"). */
export function parseVersion(output: string): SmolvmVersion {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(output);
  if (!m) {
    throw new BbError("SMOLVM", `Cannot read the smolvm version from ${JSON.stringify(output.trim())}: expected something like "smolvm 0.8.1"`);
  }
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text: `${m[1]}.${m[2]}.${m[3]}` };
}

/** -1, 0 or 1, like a sort comparator. */
export function compareVersions(a: SmolvmVersion, b: SmolvmVersion | string): number {
  const other = typeof b === "string" ? parseVersion(b) : b;
  for (const k of ["major", "minor", "patch"] as const) {
    if (a[k] !== other[k]) return a[k] < other[k] ? -1 : 1;
  }
  return 0;
}

function atLeast(v: SmolvmVersion, min: string): boolean {
  return compareVersions(v, min) >= 0;
}

export interface SmolvmCapabilities {
  /**
   * "mixed": 0.8.x, where `machine create` and `machine delete` take the name as a positional
   * argument while start/stop/status/exec take `--name`. "flag": from 1.0.2 every machine
   * subcommand takes `--name`.
   */
  nameStyle: "mixed" | "flag";
  /**
   * Before 1.8.0 `machine create --from` drops `--allow-cidr` (0.8.0 even stores
   * `allowed_cidrs: null`), so the allowlist has to be written into the state DB between
   * create and start.
   */
  allowlistNeedsDbPatch: boolean;
  /** From 0.8.1 `machine exec -t` forwards the host window size itself. */
  execForwardsWinsize: boolean;
}

export function capabilities(v: SmolvmVersion): SmolvmCapabilities {
  if (!atLeast(v, MIN_SUPPORTED)) {
    throw new BbError("SMOLVM", `smolvm ${v.text} is too old: bot-bottle needs smolvm ${MIN_SUPPORTED} or later`);
  }
  return {
    nameStyle: atLeast(v, "1.0.2") ? "flag" : "mixed",
    allowlistNeedsDbPatch: !atLeast(v, "1.8.0"),
    execForwardsWinsize: atLeast(v, "0.8.1"),
  };
}
