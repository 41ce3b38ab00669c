// forward_host_credentials: the host's own login for the agent's provider goes into
// egress's token slot only; the agent gets a placeholder. For codex that placeholder is a
// dummy ~/.codex/auth.json whose JWTs carry the real tokens' claims and `exp` (codex
// refreshes when its local token's exp lapses, and with a placeholder refresh token that
// refresh fails and drops it to the sign-in screen), signed with nothing real.
import { existsSync } from "node:fs";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { BbError } from "./errors.ts";
import { readRegularFile, refusedBecause } from "./read-regular.ts";
import { AGENT } from "./layout.ts";
import type { EgressRoute, Plan } from "./plan/schema.ts";

interface ForwardedCredentials {
  /** Real credential by egress slot (EGRESS_TOKEN_<n>). */
  slots: Record<string, string>;
  /** Files the agent gets instead (guest path -> content). */
  agentFiles: Record<string, string>;
  /** Where each credential came from, for the log (never the value). */
  sources: string[];
}

/** The hosts a provider's own login is good for; forward_host_credentials needs a route to one. */
export const PROVIDER_HOSTS = { claude: ["api.anthropic.com"], codex: ["chatgpt.com", "api.openai.com"], shell: [] } as const;

/** What the credentials depend on: a plan, or the sections bb-prepare has before it writes one. */
type Sections = Pick<Plan, "agent" | "bottle">;

function routeFor(plan: Sections): EgressRoute {
  const hosts: readonly string[] = PROVIDER_HOSTS[plan.agent.provider];
  const route = plan.bottle.egress.find((r) => hosts.includes(r.host));
  if (!route) {
    throw new BbError(
      "CONFIG",
      `${plan.agent.file}: forward_host_credentials needs an egress route for ${hosts.join(" or ")} in bottle ${plan.bottle.name} (${plan.bottle.file}); add one under egress`,
    );
  }
  return route;
}

/** A login file's JSON, never waited on: a FIFO put there (or a link to one) is refused
 * at once, naming it, instead of holding bb-prepare, bb-bundle and bb-provision. */
async function readJson(path: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readRegularFile(path, { maxBytes: LOGIN_MAX_BYTES }));
  } catch (e) {
    throw new BbError("CONFIG", `Cannot read ${path}: ${refusedBecause(e) ?? (e as Error).message}`, { cause: e });
  }
}

/** Far more than a CLI's login record (a few KiB). */
const LOGIN_MAX_BYTES = 1024 * 1024;

const b64url = (s: string) => Buffer.from(s).toString("base64url");

/** JWT claims, or null when `token` is not a JWT. */
export function jwtClaims(token: string): Record<string, unknown> | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    return JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"));
  } catch {
    return null;
  }
}

/** A JWT-shaped placeholder with the real token's claims (exp included) and no valid signature. */
export function placeholderJwt(real: string): string {
  const claims = jwtClaims(real) ?? {};
  return `${b64url(JSON.stringify({ alg: "none", typ: "JWT", bb: "placeholder" }))}.${b64url(JSON.stringify(claims))}.${b64url("bb-placeholder-signature")}`;
}

async function claude(plan: Sections, home: string, env: Record<string, string | undefined>): Promise<ForwardedCredentials> {
  const route = routeFor(plan);
  const fromEnv = env[route.tokenEnv] ?? env.ANTHROPIC_API_KEY;
  if (fromEnv) return { slots: { [route.slot]: fromEnv }, agentFiles: {}, sources: [`$${env[route.tokenEnv] ? route.tokenEnv : "ANTHROPIC_API_KEY"}`] };
  const file = join(home, ".claude", ".credentials.json");
  if (!existsSync(file)) {
    throw new BbError("CONFIG", `forward_host_credentials: no Claude credential on this host: set $${route.tokenEnv}, or log in with claude (${file})`);
  }
  const oauth = ((await readJson(file)).claudeAiOauth ?? {}) as { accessToken?: string };
  if (!oauth.accessToken) throw new BbError("CONFIG", `${file} has no claudeAiOauth.accessToken: log in with claude on the host`);
  if (route.auth !== "bearer") {
    throw new BbError(
      "CONFIG",
      `${plan.bottle.file}: your Claude login is an OAuth token, which is sent as a bearer token: declare the api.anthropic.com route with auth: bearer and agent_env: CLAUDE_CODE_OAUTH_TOKEN`,
    );
  }
  return { slots: { [route.slot]: oauth.accessToken }, agentFiles: {}, sources: [file] };
}

async function codex(plan: Sections, home: string, env: Record<string, string | undefined>): Promise<ForwardedCredentials> {
  const route = routeFor(plan);
  if (env[route.tokenEnv]) return { slots: { [route.slot]: env[route.tokenEnv]! }, agentFiles: {}, sources: [`$${route.tokenEnv}`] };
  const file = join(env.CODEX_HOME ?? join(home, ".codex"), "auth.json");
  if (!existsSync(file)) {
    throw new BbError("CONFIG", `forward_host_credentials: no Codex credential on this host: set $${route.tokenEnv}, or run codex login (${file})`);
  }
  const auth = (await readJson(file)) as { OPENAI_API_KEY?: string | null; tokens?: { id_token?: string; access_token?: string; refresh_token?: string; account_id?: string } | null };
  const guest = `${AGENT.home}/.codex/auth.json`;
  if (auth.OPENAI_API_KEY) {
    return { slots: { [route.slot]: auth.OPENAI_API_KEY }, agentFiles: { [guest]: JSON.stringify({ OPENAI_API_KEY: route.placeholder, tokens: null }, null, 2) + "\n" }, sources: [file] };
  }
  const t = auth.tokens;
  if (!t?.access_token) throw new BbError("CONFIG", `${file} has neither OPENAI_API_KEY nor tokens.access_token: run codex login on the host`);
  const dummy = {
    OPENAI_API_KEY: null,
    tokens: {
      id_token: t.id_token ? placeholderJwt(t.id_token) : null,
      access_token: placeholderJwt(t.access_token),
      refresh_token: "bb-placeholder-refresh-token",
      account_id: t.account_id ?? null,
    },
    last_refresh: new Date().toISOString(),
  };
  return { slots: { [route.slot]: t.access_token }, agentFiles: { [guest]: JSON.stringify(dummy, null, 2) + "\n" }, sources: [file] };
}

/** The host credentials to forward for this plan's agent, or nothing when it does not ask. */
export async function forwardedCredentials(plan: Sections, opts: { home: string; env: Record<string, string | undefined> }): Promise<ForwardedCredentials> {
  if (!plan.agent.forwardHostCredentials) return { slots: {}, agentFiles: {}, sources: [] };
  switch (plan.agent.provider) {
    case "claude":
      return claude(plan, opts.home, opts.env);
    case "codex":
      return codex(plan, opts.home, opts.env);
    case "shell":
      return { slots: {}, agentFiles: {}, sources: [] };
  }
}
