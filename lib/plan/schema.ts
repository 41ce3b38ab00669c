// The plan: the one JSON document every bb-* tool reads on stdin and writes to stdout.
// This file is the single source of truth for its shape; TypeScript types are derived
// from it (z.infer) and never written twice. Each tool adds its own section:
//   bb-prepare  -> everything but bundle/vm/provision
//   bb-bundle   -> bundle
//   bb-vm       -> vm
//   bb-provision-> provision
// Secret values never appear in a plan: only the names of host env vars and token slots.
//
// The repo uses zod's v3 API ("zod/v3", shipped inside zod 4). Every tool start builds these
// schemas. Under the v4 API that costs about 20 ms per start, and a start runs six tools.
// The v3 API also keeps each tool bundle about 5x smaller.
import { z } from "zod/v3";

export const PLAN_VERSION = 1;

export const Backend = z.enum(["docker", "smolmachines"]);
export const Provider = z.enum(["claude", "codex", "shell"]);
export const Service = z.enum(["firewall", "egress", "git-gate", "supervise"]);
export const AuthScheme = z.enum(["bearer", "x-api-key", "basic", "header"]);

export const EgressRoute = z.object({
  host: z.string(),
  auth: AuthScheme,
  /** Header name when auth is "header". */
  header: z.string().nullable(),
  /** Host env var whose value is the real credential (read by bb-bundle, never stored). */
  tokenEnv: z.string(),
  /** The env var inside egress that carries the credential: EGRESS_TOKEN_<n>. Only that
   * shape: bb-bundle sets it in the bundle's environment, where a plan naming NODE_OPTIONS
   * or BB_SERVICES would configure the daemons with a credential's value. */
  slot: z.string().regex(/^EGRESS_TOKEN_\d+$/, "must be EGRESS_TOKEN_<n>"),
  /** The env var the agent sees, holding only a placeholder. */
  agentEnv: z.string(),
  placeholder: z.string(),
});

const AllowHost = z.object({
  /** Exact host or "*.suffix". */
  host: z.string(),
  tlsPassthrough: z.boolean(),
  /** The ports it may be reached on; null for the default, 80 and 443 (absent in plans written before ports existed). */
  ports: z.array(z.number().int().min(1).max(65535)).nullable().default(null),
});

const GitUpstream = z.object({
  /** The host agents write in URLs (github.com). */
  host: z.string(),
  /** Where git-gate really fetches from and pushes to: <url>/<repo path>. */
  url: z.string(),
  /** Host path of the identity (SSH key) file only git-gate may read. */
  identityFile: z.string().nullable(),
  /** The only SSH host keys git-gate accepts from the upstream; null: trust on first use. */
  hostKeys: z.array(z.string()).nullable(),
});

export const PushPolicy = z.object({
  /** Ref patterns (glob, `*` within a segment, `**` across) a push may update. Empty: any. */
  allowedRefs: z.array(z.string()),
  /** Branches (short names or globs) that may not be force-pushed or deleted. */
  protectedBranches: z.array(z.string()),
  /** Path globs a push may not touch. */
  protectedPaths: z.array(z.string()),
  /** Scan added content for secrets before forwarding. */
  dlp: z.boolean(),
});

const GitConfig = z.object({
  upstreams: z.array(GitUpstream),
  /** "<host>/<owner>/<repo>" entries served by git-gate. */
  repos: z.array(z.string()),
  push: PushPolicy,
});

const GitUser = z.object({ name: z.string().nullable(), email: z.string().nullable() });

const Skill = z.object({ name: z.string(), path: z.string() });

export const AgentSection = z.object({
  name: z.string(),
  file: z.string(),
  provider: Provider,
  bottle: z.string(),
  skills: z.array(Skill),
  env: z.record(z.string(), z.string()),
  forwardHostCredentials: z.boolean(),
  hasPrompt: z.boolean(),
});

/** Resource ceilings the bottle declared; null: the backend's default (docker: an 8 GiB
 * agent, every CPU). */
export const Limits = z.object({ memoryMiB: z.number().int().positive().nullable(), cpus: z.number().positive().nullable() });

export const BottleSection = z.object({
  name: z.string(),
  file: z.string(),
  /** The extends chain, child first: ["researcher", "base"]. */
  chain: z.array(z.string()),
  env: z.record(z.string(), z.string()),
  git: GitConfig.nullable(),
  gitUser: GitUser.nullable(),
  egress: z.array(EgressRoute),
  allowHosts: z.array(AllowHost),
  sensitiveEnv: z.array(z.string()),
  supervise: z.boolean(),
  dlpDisable: z.array(z.string()),
  /** Absent in plans written before limits were declared. */
  limits: Limits.default({ memoryMiB: null, cpus: null }),
});

/** Per-bottle files bb-prepare wrote; absolute host paths (null when the service is off). */
export const FilesSection = z.object({
  dir: z.string(),
  plan: z.string(),
  firewallPolicy: z.string(),
  egressRoutes: z.string().nullable(),
  gitGateConfig: z.string().nullable(),
  gitGateHooks: z.string().nullable(),
  superviseQueue: z.string().nullable(),
  prompt: z.string().nullable(),
});

/** Where the agent reaches the bundle's daemons. On smolmachines without the bottle's agent
 * key, which the agent's copies carry (bundle.agentKeyFile; lib/http/agent-key.ts): a
 * plan holds no secret value, and a user may save one anywhere. */
const AgentUrls = z.object({
  /** HTTP(S)_PROXY for the agent. */
  proxy: z.string(),
  gitGate: z.string().nullable(),
  supervise: z.string().nullable(),
});

export const BundleSection = z.object({
  container: z.string(),
  image: z.string(),
  networks: z.object({ internal: z.string().nullable(), egress: z.string() }),
  /** The IDs docker gave those networks (null in plans written before they were recorded).
   * Names are one namespace for every state root; an ID is only ever the network bb-bundle
   * made, so bb-vm joins it without first asking whether the slug is another root's. */
  networkIds: z.object({ internal: z.string().nullable(), egress: z.string() }).nullable().default(null),
  /** Host path of the bottle CA certificate (PEM) the agent must trust. */
  caCert: z.string(),
  agentUrls: AgentUrls,
  /** smolmachines: the bottle's agent key file (0600 in its state dir), which bb-provision
   * reads to hand the agent its URLs with the key. Absent on docker, and in plans written
   * while agentUrls still carried the key. */
  agentKeyFile: z.string().optional(),
  /** smolmachines: host ports published on loopbackAddr. */
  hostPorts: z.record(z.string(), z.number()).nullable(),
  loopbackAddr: z.string().nullable(),
  startedAt: z.string(),
});

const VmSection = z.object({
  kind: z.enum(["docker", "smolvm"]),
  image: z.string(),
  imageId: z.string().nullable(),
  /** docker container name, or smolvm machine name. */
  name: z.string(),
  /** docker: the container's id, which every exec addresses it by (names are one namespace
   * for every state root, so a same-named container may be another root's bottle); null for
   * smolvm, and absent in plans written before it was recorded. */
  id: z.string().nullable().default(null),
  artifact: z.string().nullable(),
  user: z.string(),
  home: z.string(),
  /** The agent's environment (placeholders only; proxy and CA variables included). */
  env: z.record(z.string(), z.string()),
  startedAt: z.string(),
});

const ProvisionSection = z.object({
  steps: z.array(z.object({ name: z.string(), ok: z.boolean(), detail: z.string().nullable() })),
  at: z.string(),
});

export const Plan = z.object({
  version: z.literal(PLAN_VERSION),
  slug: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  createdAt: z.string(),
  backend: Backend,
  manifestDir: z.string(),
  /** State root (all bottles); files.dir is this bottle's folder below it. */
  stateRoot: z.string(),
  cwd: z.string().nullable(),
  agent: AgentSection,
  bottle: BottleSection,
  services: z.array(Service),
  files: FilesSection,
  bundle: BundleSection.optional(),
  vm: VmSection.optional(),
  provision: ProvisionSection.optional(),
});

export type Plan = z.infer<typeof Plan>;
export type Backend = z.infer<typeof Backend>;
export type Provider = z.infer<typeof Provider>;
export type Service = z.infer<typeof Service>;
export type AuthScheme = z.infer<typeof AuthScheme>;
export type EgressRoute = z.infer<typeof EgressRoute>;
type AllowHost = z.infer<typeof AllowHost>;
type GitConfig = z.infer<typeof GitConfig>;
type GitUpstream = z.infer<typeof GitUpstream>;
export type PushPolicy = z.infer<typeof PushPolicy>;
type GitUser = z.infer<typeof GitUser>;
export type AgentSection = z.infer<typeof AgentSection>;
export type BottleSection = z.infer<typeof BottleSection>;
export type Limits = z.infer<typeof Limits>;
export type FilesSection = z.infer<typeof FilesSection>;
export type BundleSection = z.infer<typeof BundleSection>;
type VmSection = z.infer<typeof VmSection>;
type ProvisionSection = z.infer<typeof ProvisionSection>;

/** Sections a tool may require beyond the base plan. */
export type SectionName = "bundle" | "vm" | "provision";
