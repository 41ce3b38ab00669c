// Names, ports and in-container paths shared by the tools that build a bottle (bb-bundle,
// bb-vm, bb-provision), the init supervisor in the bundle image, and cleanup. One place,
// so the two sides of a mount or a port can never disagree.

export const PORTS = { firewall: 8888, egress: 9099, gitGate: 9418, supervise: 9100 } as const;

/** Docker resource names for a bottle (list/cleanup find them by label, not by name). */
export const names = {
  bundle: (slug: string) => `bb-${slug}-bundle`,
  agent: (slug: string) => `bb-${slug}-agent`,
  internalNet: (slug: string) => `bb-${slug}-int`,
  egressNet: (slug: string) => `bb-${slug}-egress`,
  machine: (slug: string) => `bb-${slug}`,
  /** git-gate's store: a named volume, kept across restarts of the bottle. */
  gitGateVolume: (slug: string) => `bb-${slug}-git-gate`,
} as const;

/** Where bb-bundle mounts the bottle's state-dir folders inside the bundle container. */
export const BUNDLE_PATHS = {
  firewall: "/bb/firewall",
  /** The firewall's record of refusals (lib/blocked-record.ts): the one folder it writes. */
  firewallBlocked: "/bb/firewall-blocked",
  egress: "/bb/egress",
  gitGate: "/bb/git-gate",
  supervise: "/bb/supervise",
  ca: "/bb/ca",
  upstreamCa: "/bb/upstream-ca",
  /** file:// git upstreams, each mounted from its host folder as <this>/<n>. */
  localUpstreams: "/bb/local-upstreams",
  /** Where the bottle's git-gate volume (names.gitGateVolume) is mounted: root's, like
   * any new volume; init makes git-gate's own folder in it (sidecar-image/init/store.ts). */
  gitGateStore: "/var/lib/bb/git-gate-store",
} as const;

/** git-gate's data folder (mirrors, known hosts, git config) in the store, git-gate's uid's, 0700. */
export const GIT_GATE_DATA = `${BUNDLE_PATHS.gitGateStore}/data`;

/** The agent's side. */
export const AGENT = {
  user: "node",
  home: "/home/node",
  /** The bottle CA inside the agent (system store source + NODE_EXTRA_CA_CERTS). */
  caFile: "/usr/local/share/ca-certificates/bot-bottle.crt",
  /** The system bundle update-ca-certificates rebuilds (codex, curl, git read this one). */
  caBundle: "/etc/ssl/certs/ca-certificates.crt",
  promptFile: "/home/node/.bot-bottle/prompt.md",
  workdir: "/home/node/work",
  /** The --cwd checkout as bb-provision ships it: a tar of its own, unpacked into workdir
   * and removed. Beside workdir, so on the same filesystem (a VM's /tmp may be RAM). */
  checkoutTar: "/home/node/.bb-checkout.tar",
  /** A linked worktree's git dir (lib/provision/linked-git.ts), unpacked into workdir/.git. */
  gitDirTar: "/home/node/.bb-gitdir.tar",
  /** smolmachines: the proxy, git-gate and supervise URLs, carrying the bottle's agent key,
   * as sh `export` lines (lib/vm/env.ts bundleUrlEnv). bb-provision writes it (root's,
   * 0644: root's commands read it too, so the agent must not be able to change it); every
   * command bot-bottle runs in the VM reads it first. */
  bundleEnv: "/etc/bot-bottle/bundle-env.sh",
} as const;

/** The bottle CA's private key travels into the bundle only as this variable of init's,
 * which init hands to the firewall alone (sidecar-image/init/services.ts): a process's
 * environment is readable by its own uid only, while a file in the bundle is readable by
 * the group every daemon shares when bb-bundle cannot chown it (it runs as you). */
export const CA_KEY_ENV = "BB_CA_KEY";

/** Each upstream's SSH identity travels into the bundle as the variable <this><n> of
 * init's (n: the upstream's index; git-gate's config names it identity-<n>), which init
 * hands to git-gate alone, for the same reason as CA_KEY_ENV: run as you, bb-bundle cannot
 * give a file to git-gate's uid, and one your group may read is every daemon's. */
export const IDENTITY_ENV_PREFIX = "BB_GIT_IDENTITY_";

/** Agent-facing daemons (egress is never reachable by the agent). */
export const AGENT_FACING = ["firewall", "git-gate", "supervise"] as const;

/** The uids the bundle's own daemons run under. Far above ordinary users, so none is
 * likely to be the host user's. */
const DAEMON_UIDS = { firewall: 64101, egress: 64102, supervise: 64103, "git-gate": 64104 } as const;

/**
 * The uids the bundle's init (sidecar-image/init/identity.ts) starts each daemon under:
 * its own uid, all in the host user's group, which may read the bottle's state files.
 * None is the host user's, whose uid owns the bottle's folders in the bundle (the
 * firewall's record of refusals, supervise's queue): git-gate gets its SSH identities in
 * its environment and keeps its mirrors in a volume of its own instead. A daemon uid that
 * happens to be the host user's moves up past the others.
 */
export function daemonIdMap(host: { uid: number; gid: number }): Record<keyof typeof DAEMON_UIDS, { uid: number; gid: number }> {
  const taken = new Set<number>([host.uid]);
  const ids = {} as Record<keyof typeof DAEMON_UIDS, { uid: number; gid: number }>;
  for (const [name, preferred] of Object.entries(DAEMON_UIDS) as [keyof typeof DAEMON_UIDS, number][]) {
    let uid = preferred;
    while (taken.has(uid)) uid += 100;
    taken.add(uid);
    ids[name] = { uid, gid: host.gid };
  }
  return ids;
}

/** daemonIdMap() as BB_DAEMON_IDS: "firewall=64101:0,egress=...". */
export function daemonIds(host: { uid: number; gid: number }): string {
  return Object.entries(daemonIdMap(host))
    .map(([name, id]) => `${name}=${id.uid}:${id.gid}`)
    .join(",");
}
