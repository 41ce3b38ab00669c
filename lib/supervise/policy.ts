// Widening a bottle's firewall policy on the host: the one write bb-supervise makes to a
// file the firewall reads. The firewall reads its policy at start and when signalled, so
// callers follow a change with that signal (SIGHUP to the bundle).
import { stat } from "node:fs/promises";
import { BbError } from "../errors.ts";
import { writeFileAtomic } from "../fs-atomic.ts";
import { FirewallPolicy, readConfig } from "../sidecar-config.ts";

interface AllowHostOptions {
  host: string;
  tlsPassthrough: boolean;
}

/**
 * Add `host` to the policy file unless an entry for it exists already. Returns true when
 * the file changed. An existing entry is left as it is: a routed host must stay scanned,
 * so an approval never flips it to passthrough.
 */
export async function allowHost(policyFile: string, opts: AllowHostOptions): Promise<boolean> {
  const policy = await readConfig(FirewallPolicy, policyFile);
  const host = opts.host.toLowerCase();
  if (policy.hosts.some((h) => h.host.toLowerCase() === host)) return false;
  const next: FirewallPolicy = { ...policy, hosts: [...policy.hosts, { host, tlsPassthrough: opts.tlsPassthrough, routed: false }] };
  await writePolicy(policyFile, FirewallPolicy.parse(next));
  return true;
}

/** Take `host` back out of the policy file: an approval whose reload failed undoes its
 * own addition, so the file never allows a host whose request is still pending. */
export async function disallowHost(policyFile: string, host: string): Promise<void> {
  const policy = await readConfig(FirewallPolicy, policyFile);
  const hosts = policy.hosts.filter((h) => h.host.toLowerCase() !== host.toLowerCase());
  if (hosts.length !== policy.hosts.length) await writePolicy(policyFile, FirewallPolicy.parse({ ...policy, hosts }));
}

async function writePolicy(path: string, policy: FirewallPolicy): Promise<void> {
  try {
    // Keep the mode bb-prepare chose: the firewall may read the file as another uid.
    const { mode } = await stat(path);
    await writeFileAtomic(path, JSON.stringify(policy, null, 2) + "\n", mode & 0o777);
  } catch (e) {
    throw new BbError("STATE", `Cannot update the firewall policy ${path}: ${(e as Error).message}`, { cause: e });
  }
}
