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
} as const;

/** Where bb-bundle mounts the bottle's state-dir folders inside the bundle container. */
export const BUNDLE_PATHS = {
  firewall: "/bb/firewall",
  egress: "/bb/egress",
  gitGate: "/bb/git-gate",
  supervise: "/bb/supervise",
  ca: "/bb/ca",
  identities: "/bb/identities",
  upstreamCa: "/bb/upstream-ca",
  gitGateData: "/var/lib/bb/git-gate",
} as const;

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
} as const;

/** Agent-facing daemons (egress is never reachable by the agent). */
export const AGENT_FACING = ["firewall", "git-gate", "supervise"] as const;
