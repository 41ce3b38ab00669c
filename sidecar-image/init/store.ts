// git-gate's data folder in the bottle's volume (lib/layout.ts GIT_GATE_DATA). The volume
// is root's and 0755, as docker makes any new one, so no daemon can make anything in it.
// init cannot chown (it holds no CHOWN capability), so git-gate's uid makes its own folder
// there: init, the volume's owner, opens the volume for a moment while no daemon runs yet,
// has git-gate's uid make the folder (0700), and closes it again. A bottle started before
// keeps its folder, and with it its mirrors.
import { chmodSync, lstatSync, renameSync, type Stats } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { BbError } from "../../lib/errors.ts";
import { ANY_EXIT, run } from "../../lib/proc.ts";
import { asDaemon, type DaemonId } from "./identity.ts";

const lstatOrNull = (path: string): Stats | null => {
  try {
    return lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
};

/**
 * Make `data` (in the volume `store`) a folder of `id`'s, unless it is one. One of another
 * uid's (the daemon uids moved: another host user started this bottle) is moved aside, and
 * its mirrors are cloned again. Returns a line for init's log, or null when nothing changed.
 */
export async function prepareGitGateData(store: string, data: string, id: DaemonId): Promise<string | null> {
  const found = lstatOrNull(data);
  if (found?.isDirectory() && found.uid === id.uid) return null;
  let note = `made git-gate's folder ${data}`;
  try {
    if (found) {
      const aside = join(store, `stale-${found.uid}-${Date.now()}`);
      renameSync(data, aside);
      note += ` (the one there was uid ${found.uid}'s, now ${aside})`;
    }
    const mode = lstatSync(store).mode & 0o7777;
    chmodSync(store, 0o733);
    try {
      // Not init's environment, which holds every daemon's secrets.
      const made = await run(asDaemon(["mkdir", "-m", "0700", data], id), { expect: ANY_EXIT, replaceEnv: true, env: { PATH: process.env.PATH } });
      if (made.code !== 0) throw new Error(made.stderr.trim() || `mkdir exited ${made.code}`);
    } finally {
      chmodSync(store, mode);
    }
  } catch (e) {
    throw new BbError("CONFIG", `Cannot give git-gate (uid ${id.uid}) its folder ${data} in its volume ${store}: ${(e as Error).message}`, { cause: e });
  }
  return note;
}
