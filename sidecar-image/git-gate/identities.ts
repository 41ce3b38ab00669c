// The upstreams' SSH identities as the bundle's init hands them over: in git-gate's own
// environment (lib/layout.ts IDENTITY_ENV_PREFIX), which only its uid can read. ssh wants
// a file, so each is written to identity-<n> in a folder only this uid may enter, made
// afresh under a random name: a folder of a fixed name another daemon could make first.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BbError } from "../../lib/errors.ts";

interface EnvIdentities {
  /** The folder (0700) holding identity-<n> (0600) for each variable <prefix><n>. */
  dir: string;
  count: number;
  /** Remove the folder (when the gate stops). */
  remove(): void;
}

/** /dev/shm where there is one (the bundle's tmpfs): the keys are never written to disk. */
function base(): string {
  return existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
}

/**
 * Write every `<prefix><n>` of `env` to identity-<n> in a new private folder, and delete
 * the variables from `env` (process.env: git, ssh and the push hook, which read the files,
 * need not inherit them).
 */
export function identitiesFromEnv(prefix: string, env: Record<string, string | undefined>, parent = base()): EnvIdentities {
  const names = Object.keys(env).filter((k) => k.startsWith(prefix));
  for (const name of names) {
    if (!/^\d+$/.test(name.slice(prefix.length))) throw new BbError("USAGE", `${name}: an identity variable is ${prefix}<n>, n the upstream's index`);
  }
  let dir: string;
  try {
    dir = mkdtempSync(join(parent, "git-gate-identities-")); // 0700
    for (const name of names) {
      writeFileSync(join(dir, `identity-${name.slice(prefix.length)}`), env[name] ?? "", { mode: 0o600, flag: "wx" });
    }
  } catch (e) {
    throw new BbError("CONFIG", `Cannot write the SSH identities from ${prefix}<n> to ${parent}: ${(e as Error).message}`, { cause: e });
  }
  for (const name of names) delete env[name];
  return { dir, count: names.length, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
