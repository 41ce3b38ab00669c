// Public suffixes (co.uk, github.io, s3.amazonaws.com): names under which anyone can
// register their own site, from the Public Suffix List (ICANN and private sections, as
// bundled by tldts). A "*.co.uk" firewall rule is not one organisation's subdomains but
// every registrant's, which is an open door for exfiltration: the agent's own requests
// must never get one, and an operator writing one is told what it means.
//
// A wildcard over a *parent* of public suffixes is at least as open: "*.amazonaws.com"
// covers every S3 bucket (s3.amazonaws.com), "*.on.aws" every Lambda URL. So "*.X" is
// open when any rule of the list is X or lies beneath X. tldts answers "what is this
// name's suffix" but does not export its rules, so the "beneath" half walks tldts's own
// rule trie (labels right to left from rulesRoot; see tldts/src/suffix-trie.ts): down to
// X, then X opens something iff its node has any edge below it. The data is the whole
// list tldts ships, the same one getPublicSuffix() reads, so the two never disagree.
import { getDomain, getPublicSuffix } from "tldts";
// Typed by ./tldts-trie.d.ts from tldts's own declarations: a tldts release that
// reshapes its trie fails the type check, and public-suffix.test.ts, before it ships.
import { edgeChild, edgeLength, edgeStart, labelText, nodeFlags, rulesRoot } from "tldts/dist/cjs/src/data/trie.js";

/**
 * Multi-tenant bases the Public Suffix List does not list, treated as public suffixes
 * (each one's parent is a listed suffix, so nothing else is needed for "beneath X").
 * storage.googleapis.com: every Cloud Storage bucket is BUCKET.storage.googleapis.com, but
 * the list has googleapis.com alone, which makes storage.googleapis.com look like one
 * organisation's domain.
 */
const UNLISTED_SUFFIXES = ["storage.googleapis.com"];

// Where each edge's label starts in labelText (tldts derives the same table at load).
const edgeOffset = new Uint32Array(edgeLength.length);
for (let e = 0, offset = 0; e < edgeLength.length; e++) {
  edgeOffset[e] = offset;
  offset += edgeLength[e]!;
}

const edgeLabel = (e: number) => labelText.slice(edgeOffset[e], edgeOffset[e]! + edgeLength[e]!);

/** The child of `node` along `label`, or along the list's "*" edge when no rule names it; -1 for none. */
function childOf(node: number, label: string): number {
  let wildcard = -1;
  for (let e = edgeStart[node]!; e < edgeStart[node + 1]!; e++) {
    if (edgeLength[e] !== label.length && edgeLength[e] !== 1) continue;
    const l = edgeLabel(e);
    if (l === label) return edgeChild[e]!;
    if (l === "*") wildcard = edgeChild[e]!;
  }
  return wildcard;
}

/** The trie node of `name`, or -1 when no rule is `name` or lies beneath it. */
function nodeOf(name: string): number {
  let node: number = rulesRoot;
  for (const label of name.split(".").reverse()) {
    node = childOf(node, label);
    if (node === -1) return -1;
  }
  return node;
}

const hasEdges = (node: number) => edgeStart[node + 1]! > edgeStart[node]!;

/** Up to `max` rules beneath `node` (names under `base`), from the nearest level that has
 * any, shortest first: only for messages, so only walked for a wildcard already refused. */
function rulesBeneath(node: number, base: string, max: number): string[] {
  let level: [number, string][] = [[node, base]];
  while (level.length) {
    const next: [number, string][] = [];
    for (const [n, name] of level) {
      for (let e = edgeStart[n]!; e < edgeStart[n + 1]!; e++) next.push([edgeChild[e]!, `${edgeLabel(e)}.${name}`]);
    }
    const rules = next.filter(([n]) => nodeFlags[n] !== 0).map(([, name]) => name);
    if (rules.length) return rules.sort((a, b) => a.length - b.length || (a < b ? -1 : 1)).slice(0, max);
    level = next;
  }
  return [];
}

interface OpenWildcard {
  /** The public suffix to name first: X itself, or the nearest one beneath X. */
  suffix: string;
  /** What the wildcard opens, for people: "github.io", or "the public suffixes beneath
   * amazonaws.com (s3.amazonaws.com, elb.amazonaws.com, ...)". */
  text: string;
}

/**
 * For "*.X" where X is a public suffix, or has public suffixes beneath it, what the
 * wildcard opens; null for any other host (exact names included).
 */
export function publicSuffixUnderWildcard(host: string): OpenWildcard | null {
  if (!host.startsWith("*.")) return null;
  const bare = host.slice(2);
  if (getPublicSuffix(bare, { allowPrivateDomains: true }) === bare || UNLISTED_SUFFIXES.includes(bare)) return { suffix: bare, text: bare };
  const node = nodeOf(bare);
  if (node === -1 || !hasEdges(node)) return null;
  const named = rulesBeneath(node, bare, 3);
  const shown = [...named.slice(0, 2), ...(named.length > 2 ? ["..."] : [])];
  return { suffix: named[0]!, text: `the public suffixes beneath ${bare} (${shown.join(", ")})` };
}

/**
 * The registrable domain of a host name: its public suffix and one label more
 * ("foo.github.io", "shop.co.uk", "x.test"), the unit one registrant owns. A public suffix
 * itself, a single label or an IP literal is its own. Names are taken as a URL parser let
 * them through, not as DNS would ("-a.x.test" still has x.test): else each odd name a flood
 * makes up would be a unit of its own.
 */
export function registrableDomain(host: string): string {
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  for (const s of UNLISTED_SUFFIXES) {
    if (name.endsWith(`.${s}`)) return `${name.slice(0, -s.length - 1).split(".").pop()}.${s}`;
  }
  return getDomain(name, { allowPrivateDomains: true, validateHostname: false }) ?? name;
}
