// Each daemon under its own uid. bb-bundle runs the bundle as root with only the
// capabilities init needs to hand out identities (SETUID, SETGID, SETPCAP, KILL) and says
// who runs what in BB_DAEMON_IDS:
//   firewall=64101:1000,egress=64102:1000,supervise=64103:1000,git-gate=64104:1000
// They share only the host user's group, for the group-readable state files (bb-prepare).
// A daemon's environment (/proc/PID/environ) is readable by its own uid only, so a
// compromised firewall cannot read egress's token slots, nor git-gate's SSH identities. Each daemon is started through setpriv with no
// capabilities, an empty bounding set and no_new_privs, even when its uid is 0.
import { readFileSync, appendFileSync } from "node:fs";
import { BbError } from "../../lib/errors.ts";
import { Service } from "../../lib/plan/schema.ts";

export interface DaemonId {
  uid: number;
  gid: number;
}

type DaemonIds = Partial<Record<Service, DaemonId>>;

/** A home no daemon can write, so none can plant config (.gitconfig, .ssh) another reads. */
export const DAEMON_HOME = "/nonexistent";

/** Parse BB_DAEMON_IDS ("firewall=64101:1000,..."); empty or unset: every daemon runs as init does. */
export function parseDaemonIds(text: string | undefined): DaemonIds {
  const ids: DaemonIds = {};
  for (const part of (text ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^([a-z-]+)=(\d+):(\d+)$/.exec(part);
    const name = m?.[1];
    if (!m || !Service.safeParse(name).success) {
      throw new BbError("USAGE", `BB_DAEMON_IDS wants service=uid:gid pairs separated by commas, got ${JSON.stringify(part)}`);
    }
    ids[name as Service] = { uid: Number(m[2]), gid: Number(m[3]) };
  }
  return ids;
}

/** `argv` run as `id` through setpriv: no supplementary groups, no capabilities, no_new_privs. */
export function asDaemon(argv: string[], id: DaemonId): string[] {
  return [
    "setpriv", `--reuid=${id.uid}`, `--regid=${id.gid}`, "--clear-groups",
    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", ...argv,
  ];
}

/**
 * Give every uid in `ids` a passwd entry: ssh refuses to run for a uid it cannot look up
 * ("No user exists for uid 501"), which is what the host user's uid is in the image
 * unless it happens to be 1000. Runs as root in the bundle, before any daemon starts.
 */
export function ensurePasswdEntries(ids: DaemonIds, passwd = "/etc/passwd"): void {
  let text: string;
  try {
    text = readFileSync(passwd, "utf8");
  } catch (e) {
    throw new BbError("CONFIG", `Cannot read ${passwd} to add the daemons' users: ${(e as Error).message}`, { cause: e });
  }
  const known = new Set(text.split("\n").map((l) => l.split(":")[2]).filter(Boolean));
  const lines: string[] = [];
  for (const [name, id] of Object.entries(ids)) {
    if (known.has(String(id.uid))) continue;
    known.add(String(id.uid));
    lines.push(`bb-${name}:x:${id.uid}:${id.gid}:bot-bottle ${name}:${DAEMON_HOME}:/usr/sbin/nologin`);
  }
  if (!lines.length) return;
  try {
    appendFileSync(passwd, `${text.endsWith("\n") || text === "" ? "" : "\n"}${lines.join("\n")}\n`);
  } catch (e) {
    throw new BbError("CONFIG", `Cannot add the daemons' users to ${passwd} (init must run as root when BB_DAEMON_IDS is set): ${(e as Error).message}`, { cause: e });
  }
}
