// Credential injection for routed hosts. A route names a host, an auth scheme and the
// token slot (EGRESS_TOKEN_<n>) in egress's own environment that holds the real
// credential. Whatever credential the agent sent (a placeholder at best) is removed
// before the real one is added, so the placeholder never reaches the upstream.
import { Buffer } from "node:buffer";
import { BbError } from "../../lib/errors.ts";
import type { EgressRoutes } from "../../lib/sidecar-config.ts";

export type Route = EgressRoutes["routes"][number];

/** Routes by lower-cased host name. Throws CONFIG for a route egress could not honour. */
export function routeTable(routes: EgressRoutes): Map<string, Route> {
  const table = new Map<string, Route>();
  for (const route of routes.routes) {
    const host = route.host.toLowerCase();
    if (route.auth === "header" && !route.header) {
      throw new BbError("CONFIG", `egress route for ${route.host}: auth "header" needs a header name`);
    }
    if (table.has(host)) throw new BbError("CONFIG", `egress routes name ${route.host} twice`);
    table.set(host, { ...route });
  }
  return table;
}

/** Header names (lower case) that may carry the agent's credential for this route. */
export function credentialHeaderNames(route: Route): string[] {
  const names = ["authorization", "x-api-key"];
  if (route.header) names.push(route.header.toLowerCase());
  return names;
}

type Injection =
  | { ok: true; header: [name: string, value: string] }
  | { ok: false; reason: string };

/**
 * The user:password a token is sent as over basic auth. A bare token (no colon) goes the way
 * GitHub and most forges take one: as the password of the conventional user "x-access-token".
 */
function basicPair(token: string): string {
  return token.includes(":") ? token : `x-access-token:${token}`;
}

/**
 * Every spelling of `route`'s credential that egress itself puts on the wire: the token,
 * for basic auth also its base64 form and a user:password pair's password. These are what
 * egress masks in the upstream's answer (redact.ts).
 */
export function injectedSecrets(route: Route, env: Record<string, string | undefined>): string[] {
  const token = env[route.slot];
  if (!token) return [];
  if (route.auth !== "basic") return [token];
  const userPass = basicPair(token);
  return [token, userPass.slice(userPass.indexOf(":") + 1), Buffer.from(userPass, "utf8").toString("base64")];
}

/** The header egress adds for `route`, read from its token slot in `env` at call time. */
export function injectedHeader(route: Route, env: Record<string, string | undefined>): Injection {
  const token = env[route.slot];
  if (!token) {
    return {
      ok: false,
      reason: `no credential for ${route.host}: token slot ${route.slot} is empty in egress's environment (bb-bundle fills it from the host env var the bottle names)`,
    };
  }
  switch (route.auth) {
    case "bearer":
      return { ok: true, header: ["authorization", `Bearer ${token}`] };
    case "x-api-key":
      return { ok: true, header: ["x-api-key", token] };
    case "basic":
      return { ok: true, header: ["authorization", `Basic ${Buffer.from(basicPair(token), "utf8").toString("base64")}`] };
    case "header":
      return { ok: true, header: [route.header!.toLowerCase(), token] };
  }
}
