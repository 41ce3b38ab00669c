// The per-bottle files bb-prepare writes into the state dir and the sidecar daemons
// read. Like the plan, one zod schema per file is the contract between the two sides.
// Secret values are never in these files: only the names of env slots that bb-bundle
// fills from the host environment when it starts the bundle.
import { z } from "zod/v3";
import { AuthScheme, PushPolicy } from "./plan/schema.ts";
import { BbError } from "./errors.ts";
import { printable } from "./printable.ts";
import { readRegularFile } from "./read-regular.ts";

export const CONFIG_VERSION = 1;

/** DLP detector names; a bottle may switch any of them off. */
export const DETECTORS = [
  "aws",
  "gcp",
  "github",
  "gitlab",
  "slack",
  "stripe",
  "anthropic",
  "openai",
  "npm",
  "private_key",
  "jwt",
  "high_entropy",
  "sensitive_env",
] as const;
export const Detector = z.enum(DETECTORS);
export type Detector = z.infer<typeof Detector>;

/** A host env var whose literal value must never leave; the value reaches the scanning
 * daemon (firewall, git-gate) in env var `slot` (BB_SENSITIVE_<n>), never egress or the agent. */
const SensitiveSlot = z.object({ name: z.string(), slot: z.string() });

/** Where an allowed host may be reached unless it lists its own ports: plain HTTP and TLS. */
export const DEFAULT_PORTS: readonly number[] = [80, 443];

export const FirewallPolicy = z.object({
  version: z.literal(CONFIG_VERSION),
  slug: z.string(),
  hosts: z.array(
    z.object({
      /** Exact host or "*.suffix" (matches any subdomain, not the bare suffix). */
      host: z.string(),
      tlsPassthrough: z.boolean(),
      /** Ports the host may be reached on (CONNECT and plain HTTP); absent: DEFAULT_PORTS. */
      ports: z.array(z.number().int().min(1).max(65535)).optional(),
      /** egress injects a credential for this host (never passthrough). */
      routed: z.boolean(),
      /** Request headers egress strips and replaces with the real credential on this host:
       * what the agent puts there never leaves, so the firewall does not scan them (the
       * placeholder may look like a JWT, as codex's must). */
      replacedHeaders: z.array(z.string()).optional(),
    }),
  ),
  dlp: z.object({
    disabled: z.array(Detector),
    sensitive: z.array(SensitiveSlot),
  }),
});
export type FirewallPolicy = z.infer<typeof FirewallPolicy>;

export const EgressRoutes = z.object({
  version: z.literal(CONFIG_VERSION),
  routes: z.array(
    z.object({
      host: z.string(),
      auth: AuthScheme,
      header: z.string().nullable(),
      /** EGRESS_TOKEN_<n>: egress's own env var holding the real credential. */
      slot: z.string(),
    }),
  ),
});
export type EgressRoutes = z.infer<typeof EgressRoutes>;

export const GitGateConfig = z.object({
  version: z.literal(CONFIG_VERSION),
  upstreams: z.array(
    z.object({
      host: z.string(),
      url: z.string(),
      /** File name of the identity in the gate's identity dir (in the bundle, what git-gate
       * writes from its environment: sidecar-image/git-gate/identities.ts), or null. */
      identity: z.string().nullable(),
      /** The only SSH host keys accepted from the upstream ("<type> <base64>"); null: the
       * first key seen is trusted and pinned. */
      hostKeys: z.array(z.string()).nullable(),
    }),
  ),
  /** "<host>/<owner>/<repo>" */
  repos: z.array(z.string()),
  push: PushPolicy,
  dlp: z.object({ disabled: z.array(Detector), sensitive: z.array(SensitiveSlot) }),
});
export type GitGateConfig = z.infer<typeof GitGateConfig>;

/**
 * Parse JSON text and validate it; errors name the file and the first bad field. What the
 * messages quote of the file (JSON.parse's snippet, zod's "received" value, a key) is
 * made printable: some of these files are written inside the bundle, and a raw newline
 * in an error could forge lines on the operator's terminal.
 */
export function parseJsonFile<T>(schema: z.ZodType<T>, text: string, path: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new BbError("CONFIG", `${path} is not JSON: ${printable((e as Error).message)}`, { cause: e });
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    const first = r.error.issues[0]!;
    throw new BbError("CONFIG", `${path}: ${printable(first.path.map(String).join(".")) || "(root)"}: ${printable(first.message)}`);
  }
  return r.data;
}

/** Read and validate one sidecar config file; errors name the file. One that is no
 * regular file (a FIFO) is refused, not waited on: bb-prepare reads the approvals while it
 * holds a bottle, and would hold it for ever, deaf to Ctrl-C's rollback. */
export async function readConfig<T>(schema: z.ZodType<T>, path: string): Promise<T> {
  let text: string;
  try {
    text = await readRegularFile(path);
  } catch (e) {
    throw new BbError("CONFIG", `Cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseJsonFile(schema, text, path);
}
