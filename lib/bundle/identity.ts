// The SSH identities git-gate fetches with, read from the files the bottle names
// (identity_file) when its bundle starts.
import { BbError } from "../errors.ts";
import { IDENTITY_ENV_PREFIX } from "../layout.ts";
import type { Plan } from "../plan/schema.ts";
import { readRegularFile, refusedBecause } from "../read-regular.ts";

/**
 * The identities, for init to hand to git-gate alone (lib/layout.ts IDENTITY_ENV_PREFIX),
 * by name as the CA key is: git-gate runs under a uid of its own, which your 0600 key files
 * are not readable by, and which bb-bundle, run as you, cannot give a copy to. A copy your
 * group may read would be the firewall's and supervise's as well.
 *
 * Each is read as a regular file only: bb-prepare checked it was one, but a FIFO put there
 * since (before a resume, say) would hold bb-bundle, Ctrl-C and all, until a writer came.
 */
export async function identityEnv(plan: Plan): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const [i, u] of (plan.bottle.git?.upstreams ?? []).entries()) {
    if (!u.identityFile) continue;
    const file = u.identityFile;
    env[`${IDENTITY_ENV_PREFIX}${i}`] = await readRegularFile(file).catch((e: Error) => {
      const refused = refusedBecause(e);
      const why = refused ? `${refused}: name the private key file itself` : e.message;
      throw new BbError("CONFIG", `Cannot read identity_file ${file} of git upstream ${u.host}: ${why}`, { cause: e, details: { file } });
    });
  }
  return env;
}
