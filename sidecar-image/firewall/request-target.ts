// What a proxied request names, and what of it goes on: the authority of a CONNECT or
// of an absolute-form URL (gated by exactly what the agent sent), and the headers a hop
// consumes rather than forwards.
import type http from "node:http";
import { isLeafHost, normalizeHost } from "../../lib/tls/issuer.ts";
import type { Endpoint, Target } from "./upstream.ts";

/** Per-hop headers, never forwarded (RFC 9110 7.6.1), plus ones the firewall consumes. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "proxy-authenticate",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect", // the firewall already answered 100-continue and holds the whole body
]);

export function withoutHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = String(headers.connection ?? "")
    .toLowerCase()
    .split(",")
    .map((s) => s.trim());
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k) && !named.includes(k)) out[k] = v;
  return out;
}

/**
 * Parse "host:port" (CONNECT) or an authority; IPv6 may be bracketed. A host no DNS name
 * or address can be ("*.x.test", "a..x.test", 60 KiB long: the URL parser takes them) is
 * no target: a "*.suffix" rule would allow it, and it would get a leaf of its own.
 */
export function parseAuthority(text: string, fallbackPort: number): Endpoint | null {
  try {
    const u = new URL(`http://${text}`);
    if (!u.hostname || u.username || u.pathname !== "/" || /[?#]/.test(text)) return null;
    const host = normalizeHost(u.hostname);
    if (!isLeafHost(host)) return null;
    // The URL is parsed as http, so an explicit ":80" reads as no port at all; take it
    // from the text, or "CONNECT host:80" and "https://host:80/" would be gated as 443.
    const explicit = u.port || /:(\d+)$/.exec(text)?.[1];
    return { host, port: explicit ? Number(explicit) : fallbackPort };
  } catch {
    return null;
  }
}

const ABSOLUTE = /^(https?):\/\/([^/?#]*)([^#]*)/i;

/** Target of an absolute-form request, keeping the path exactly as sent. */
export function parseAbsolute(url: string): (Target & { path: string }) | null {
  const m = ABSOLUTE.exec(url);
  if (!m) return null;
  const scheme = m[1]!.toLowerCase() as Target["scheme"];
  const at = parseAuthority(m[2]!, scheme === "https" ? 443 : 80);
  if (!at) return null;
  const rest = m[3] || "/";
  return { scheme, ...at, path: rest.startsWith("/") ? rest : `/${rest}` };
}

/** A request with neither Content-Length (or a zero one) nor Transfer-Encoding has no body (RFC 9112 6.3). */
export const hasBody = (req: http.IncomingMessage) =>
  req.headers["transfer-encoding"] !== undefined || (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0");
