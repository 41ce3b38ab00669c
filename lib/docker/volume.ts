// Named volumes: a bottle's store that outlives its bundle container (git-gate's mirrors),
// made with the bottle's labels so bb-list and bb-cleanup find it as they find the rest.
import { boundedDocker, failure, isNoSuch } from "./cmd.ts";
import { labelArgs } from "./labels.ts";

/** The labels of volume `name`, or null when there is none. */
export async function volumeLabels(name: string): Promise<Record<string, string> | null> {
  const what = `Cannot inspect volume ${name}`;
  const r = await boundedDocker(["volume", "inspect", "--format", "{{json .Labels}}", name], { expect: [0, 1], what });
  if (r.code !== 0) {
    if (isNoSuch(r.stderr)) return null;
    throw failure(r, what);
  }
  const parsed = JSON.parse(r.stdout.trim() || "null") as Record<string, string> | null;
  return parsed ?? {};
}

/** Create volume `name` with `labels` (docker leaves one that exists as it is, labels and all). */
export async function createVolume(name: string, labels: Record<string, string>): Promise<void> {
  await boundedDocker(["volume", "create", ...labelArgs(labels), name], { what: `Cannot create volume ${name}` });
}

/** Remove volume `name`; false when there was none. A volume a container uses is refused. */
export async function removeVolume(name: string): Promise<boolean> {
  const r = await boundedDocker(["volume", "rm", name], { expect: [0, 1], what: `Cannot remove volume ${name}` });
  if (r.code === 0) return true;
  if (isNoSuch(r.stderr)) return false;
  throw failure(r, `Cannot remove volume ${name}`);
}
