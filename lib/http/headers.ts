// Header plumbing for one proxied hop: hop-by-hop headers belong to the connection they
// arrived on (RFC 9110 7.6.1) and are dropped, together with any header the Connection
// header lists. Transfer-Encoding stays: node re-frames the body by it on both sides.

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer", "upgrade"]);

/** Flat raw header list [k, v, k, v, ...] -> pairs without hop-by-hop headers or `drop` (lower-case names). */
export function endToEndHeaders(raw: string[], drop: Iterable<string> = []): [string, string][] {
  const dropped = new Set(HOP_BY_HOP);
  for (const d of drop) dropped.add(d);
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== "connection") continue;
    for (const token of raw[i + 1]!.split(",")) dropped.add(token.trim().toLowerCase());
  }
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (!dropped.has(name.toLowerCase())) out.push([name, raw[i + 1]!]);
  }
  return out;
}

/** Pairs -> the object node's http.request takes (repeated names become arrays). */
export function headerObject(pairs: [string, string][]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of pairs) {
    const key = k.toLowerCase();
    const prev = out[key];
    out[key] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

/** Pairs -> the flat list node's writeHead takes (keeps repeats such as Set-Cookie apart). */
export function flat(pairs: [string, string][]): string[] {
  return pairs.flat();
}

/** Flat raw header list [k, v, k, v, ...] -> pairs, every header kept (an upgrade's 101). */
export function pairs(raw: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}
