// The operator's approvals, kept where only the host writes: a file in the bottle's own
// folder, which no container mounts. A resumed bottle gets back these hosts, never what
// the supervise queue says: the queue is the bundle's to write too, so a compromised
// daemon could mark any host "approved" there and have the next bundle open it.
import { existsSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod/v3";
import { writeFileAtomic } from "../fs-atomic.ts";
import { readConfig } from "../sidecar-config.ts";

export const APPROVALS_FILE = "approved-hosts.json";

const Approval = z.object({ host: z.string(), tlsPassthrough: z.boolean(), request: z.string(), approvedAt: z.string() }).strict();
export type Approval = z.infer<typeof Approval>;
const Approvals = z.object({ version: z.literal(1), hosts: z.array(Approval) }).strict();

const approvalsFile = (bottleDir: string) => join(bottleDir, APPROVALS_FILE);

/** The hosts approved for the bottle in `bottleDir`, oldest first; none when never any.
 * A file that does not parse is an error naming it and its first bad field. */
export async function readApprovals(bottleDir: string): Promise<Approval[]> {
  const path = approvalsFile(bottleDir);
  return existsSync(path) ? (await readConfig(Approvals, path)).hosts : [];
}

/** Add one approval (a host approved again replaces its entry). */
export async function recordApproval(bottleDir: string, approval: Approval): Promise<void> {
  const hosts = (await readApprovals(bottleDir)).filter((a) => a.host !== approval.host);
  await writeFileAtomic(approvalsFile(bottleDir), JSON.stringify({ version: 1, hosts: [...hosts, approval] }, null, 2) + "\n");
}

/**
 * Set when an approval's reload went unanswered by the engine: the signal may have landed,
 * so the running firewall may allow a host that the policy file (rolled back) does not.
 * The next reload that succeeds pays it; a deny, which otherwise leaves the firewall be,
 * reloads while it is set.
 */
export const RELOAD_OWED_FILE = "firewall-reload-owed";

export const reloadOwed = (bottleDir: string): boolean => existsSync(join(bottleDir, RELOAD_OWED_FILE));

export async function setReloadOwed(bottleDir: string, why: string): Promise<void> {
  await writeFile(join(bottleDir, RELOAD_OWED_FILE), `${why}\n`);
}

export async function clearReloadOwed(bottleDir: string): Promise<void> {
  await rm(join(bottleDir, RELOAD_OWED_FILE), { force: true });
}
