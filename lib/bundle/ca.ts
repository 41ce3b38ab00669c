// The bottle's CA: minted once per bottle into <state>/ca (cert 0644, key 0600, yours) and
// reused on resume, so an agent that already trusts it keeps working. The firewall signs
// its intercepted leaves with it; the agent trusts only its certificate. Only the
// certificate is mounted into the bundle: bb-bundle hands the key to the firewall alone,
// in its environment (lib/layout.ts CA_KEY_ENV).
import { existsSync } from "node:fs";
import { chmod, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BbError } from "../errors.ts";
import { CA_KEY_ENV } from "../layout.ts";
import { readRegularFile, refusedBecause } from "../read-regular.ts";

interface CaFiles {
  dir: string;
  cert: string;
  key: string;
  created: boolean;
}

/** A bottle CA on its way into <state>/ca: the one there, or a new one minted beside it. */
interface StagedCa {
  /** Whether this run minted a new one (false: the bottle's placed CA, nothing to undo). */
  minted: boolean;
  /** Put it in place. A new one appears whole or not at all: of two runs that minted one
   * at once, the first to place it wins and both use that one. */
  place(): Promise<CaFiles>;
  /** Remove a new one that was never placed (a start that failed before); nothing else. */
  discard(): Promise<void>;
}

const filesIn = (dir: string) => ({ cert: join(dir, "ca.pem"), key: join(dir, "ca-key.pem") });

/**
 * The bottle CA, minted if there is none yet and placed by the caller once its networks
 * are made: a run that fails before that leaves nothing, and no run ever writes into the
 * CA another run of the same bottle placed (a key of one and a certificate of the other).
 */
export async function stageBottleCa(stateDir: string, slug: string): Promise<StagedCa> {
  const dir = join(stateDir, "ca");
  // Whatever the umask, or an older bot-bottle's 0640 (your group's: every daemon's).
  const keyMode = (key: string) => chmod(key, 0o600);
  const complete = () => Object.values(filesIn(dir)).every((f) => existsSync(f));
  const existing = async (): Promise<CaFiles> => {
    const { cert, key } = filesIn(dir);
    // Readable, or fail now rather than inside the bundle; and a FIFO put there in your
    // folder is refused rather than waited on (bb-bundle and its Ctrl-C with it).
    await readRegularFile(cert);
    await keyMode(key);
    return { dir, cert, key, created: false };
  };
  if (complete()) return { minted: false, place: existing, discard: async () => {} };

  // Minted beside its place (same filesystem), so that a rename puts it there whole.
  const tmp = await mkdtemp(join(stateDir, ".ca-"));
  try {
    // Loaded only here: the certificate library is a fifth of bb-bundle and most of its load
    // time, and a resumed bottle never needs it.
    const { mintCa } = await import("../tls/cert.ts");
    const pair = await mintCa({ commonName: `bot-bottle ${slug} CA` });
    const staged = filesIn(tmp);
    await writeFile(staged.key, pair.keyPem, { mode: 0o600, flag: "wx" });
    await keyMode(staged.key);
    await writeFile(staged.cert, pair.certPem, { mode: 0o644, flag: "wx" });
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  let placed = false;
  return {
    minted: true,
    async place() {
      try {
        await rename(tmp, dir); // onto nothing, or an empty folder
        placed = true;
        return { dir, ...filesIn(dir), created: true };
      } catch (e) {
        await rm(tmp, { recursive: true, force: true });
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e;
      }
      // Another run of this bottle placed its CA first: that one it is.
      if (!complete()) throw new BbError("STATE", `Cannot put the bottle CA in place: ${dir} holds something else than a CA (ca.pem and ca-key.pem); remove that folder and run bb-bundle again`);
      return existing();
    },
    discard: () => (placed ? Promise.resolve() : rm(tmp, { recursive: true, force: true })),
  };
}

/**
 * The CA key, for init to hand to the firewall alone (lib/layout.ts CA_KEY_ENV), by name as
 * the token slots are. Not a file in the bundle: run as you, bb-bundle cannot give one to
 * the firewall's uid, and a file your group may read is every daemon's, supervise's and
 * git-gate's too, which the agent talks to; init, holding no CHOWN or DAC capability,
 * cannot take it over either. Read as a regular file only, as the certificate is.
 */
export async function caKeyEnv(key: string): Promise<Record<string, string>> {
  const pem = await readRegularFile(key).catch((e: Error) => {
    throw new BbError("STATE", `Cannot read the bottle CA key ${key}: ${refusedBecause(e) ?? e.message}`, { cause: e });
  });
  return { [CA_KEY_ENV]: pem };
}
