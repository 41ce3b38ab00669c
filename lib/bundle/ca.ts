// The bottle's CA: minted once per bottle into <state>/ca (cert 0644, key 0600) and reused
// on resume, so an agent that already trusts it keeps working. The firewall signs its
// intercepted leaves with it; the agent trusts only its certificate.
import { existsSync } from "node:fs";
import { chmod, readFile, writeFile } from "node:fs/promises";
import { dirWithMode } from "../paths.ts";
import { join } from "node:path";

export interface CaFiles {
  dir: string;
  cert: string;
  key: string;
  created: boolean;
}

export async function ensureBottleCa(stateDir: string, slug: string): Promise<CaFiles> {
  const dir = join(stateDir, "ca");
  const cert = join(dir, "ca.pem");
  const key = join(dir, "ca-key.pem");
  // The firewall reads the key in the bundle under a uid of its own that shares only your
  // group (sidecar-image/init/identity.ts); the bottle's folder around it is 0700.
  if (existsSync(cert) && existsSync(key)) {
    await readFile(cert, "utf8"); // readable, or fail now rather than inside the bundle
    await chmod(dir, 0o750); // a bottle from an older bot-bottle had 0700 and 0600
    await chmod(key, 0o640);
    return { dir, cert, key, created: false };
  }
  await dirWithMode(dir, 0o750);
  // Loaded only here: the certificate library is a fifth of bb-bundle and most of its load
  // time, and a resumed bottle never needs it.
  const { mintCa } = await import("../tls/cert.ts");
  const pair = await mintCa({ commonName: `bot-bottle ${slug} CA` });
  await writeFile(key, pair.keyPem, { mode: 0o640 });
  await chmod(key, 0o640); // whatever the umask
  await writeFile(cert, pair.certPem, { mode: 0o644 });
  return { dir, cert, key, created: true };
}
