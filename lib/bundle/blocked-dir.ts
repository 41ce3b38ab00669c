// The one folder of the bottle's the firewall writes: its record of refusals
// (lib/blocked-record.ts), mounted read-write at BUNDLE_PATHS.firewallBlocked. The agent
// has no mount of the state dir on either backend (its container or VM gets copies from
// bb-provision), so it can neither read the record nor rewrite it.
import { lchown } from "node:fs/promises";
import { join } from "node:path";
import { BLOCKED_DIR } from "../blocked-record.ts";
import { daemonIdMap } from "../layout.ts";
import { dirWithMode } from "../paths.ts";

/** Shared with your group as the supervise queue is (lib/supervise/queue.ts): the firewall
 * runs under a uid of its own in your group, and sticky, so no other daemon there may
 * replace or remove the firewall's file (which the firewall writes before it listens, so
 * none can make it first: sidecar-image/firewall/blocked.ts). No daemon runs as you, the
 * folder's owner (lib/layout.ts daemonIdMap). */
const SHARED_BLOCKED_MODE = 0o1770;

/**
 * Make (or take over from an earlier start) the folder and give it to the firewall. Run as
 * root, bb-bundle gives it to the firewall's uid (0700): every daemon shares root's group,
 * and none but the firewall need write there. Otherwise it stays yours, SHARED_BLOCKED_MODE.
 * Returns its path.
 */
export async function firewallBlockedDir(stateDir: string, host: { uid: number; gid: number } | undefined): Promise<string> {
  const dir = join(stateDir, BLOCKED_DIR);
  const firewall = host?.uid === 0 ? daemonIdMap(host).firewall : undefined;
  // Never one planted there (a symlink, or someone else's folder): it is mounted read-write
  // into the bundle, and `bb-supervise blocked` reads what it holds as the firewall's.
  await dirWithMode(dir, firewall ? 0o700 : SHARED_BLOCKED_MODE, firewall ? [firewall.uid] : []);
  if (firewall) await lchown(dir, firewall.uid, firewall.gid);
  return dir;
}
