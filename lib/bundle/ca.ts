// The bottle's CA: minted once per bottle into <state>/ca (cert 0644, key 0640, or 0600 and
// the firewall's when bb-bundle runs as root) and reused on resume, so an agent that
// already trusts it keeps working. The firewall signs its intercepted leaves with it; the
// agent trusts only its certificate.
import { existsSync } from "node:fs";
import { chmod, chown, readFile, writeFile } from "node:fs/promises";
import { dirWithMode } from "../paths.ts";
import { join } from "node:path";

export interface CaFiles {
  dir: string;
  cert: string;
  key: string;
  created: boolean;
}

/**
 * `firewall`: the firewall's uid in the bundle, when bb-bundle may hand it the key (runs as
 * root). The key is then that uid's alone (0600): every daemon shares the host user's
 * group, and the others (supervise and git-gate, which the agent talks to) have no use
 * for it. Otherwise it is group-readable (0640), which is how the firewall reads it.
 */
export async function ensureBottleCa(stateDir: string, slug: string, firewall?: { uid: number; gid: number }): Promise<CaFiles> {
  const dir = join(stateDir, "ca");
  const cert = join(dir, "ca.pem");
  const key = join(dir, "ca-key.pem");
  // The bottle's folder around it is 0700.
  const keyMode = async () => {
    if (firewall) await chown(key, firewall.uid, firewall.gid);
    await chmod(key, firewall ? 0o600 : 0o640); // whatever the umask, or an older bot-bottle's 0600
  };
  if (existsSync(cert) && existsSync(key)) {
    await readFile(cert, "utf8"); // readable, or fail now rather than inside the bundle
    await chmod(dir, 0o750); // a bottle from an older bot-bottle had 0700
    await keyMode();
    return { dir, cert, key, created: false };
  }
  await dirWithMode(dir, 0o750);
  // Loaded only here: the certificate library is a fifth of bb-bundle and most of its load
  // time, and a resumed bottle never needs it.
  const { mintCa } = await import("../tls/cert.ts");
  const pair = await mintCa({ commonName: `bot-bottle ${slug} CA` });
  await writeFile(key, pair.keyPem, { mode: 0o600 });
  await keyMode();
  await writeFile(cert, pair.certPem, { mode: 0o644 });
  return { dir, cert, key, created: true };
}
