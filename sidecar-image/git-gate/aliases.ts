// What upstream holds right now, listed once per push before the policy runs: its refs'
// values (what counts as published, published.ts) and which refs a push may move upstream
// besides the ones it names. Upstream may hold a ref as a symbolic ref to another
// ("refs/heads/master" -> main), and its receive-pack moves (or deletes) the target when
// the symref is pushed; the gate's mirror keeps the symref as a plain ref, so the policy
// alone would judge such a push by the wrong name.
//
// A protocol v2 ref listing names every symref's target. A server that speaks only v0 (an
// sshd that does not pass GIT_PROTOCOL on, a web server that does not pass the
// Git-Protocol header) shows HEAD's alone; a symref then shows up only as a ref at the
// same commit as its target, so every such ref counts as a possible target. Neither
// protocol lists a symref whose target does not exist yet (dangling.ts).
import { BbError } from "../../lib/errors.ts";
import { redactCredentials } from "../../lib/proc.ts";

type ListRefs = (args: string[], env: Record<string, string | undefined>) => Promise<{ code: number; stdout: string; stderr: string }>;

export interface Listing {
  /** "v2": `symrefs` are all of upstream's; "v0": HEAD's at most. */
  protocol: "v0" | "v2";
  /** Symref name -> the ref it names. */
  symrefs: Map<string, string>;
  /** Every refs/... name upstream lists -> its value (peeled "^{}" lines left out). */
  values: Map<string, string>;
}

interface Aliases {
  /** "v2": `targets` are upstream's symrefs; "v0": refs that may be (same commit, not known). */
  protocol: "v0" | "v2";
  /** For each pushed ref that exists upstream, the refs a push to it may move instead. */
  targets: Map<string, string[]>;
}

// The client's packet trace is the only place git says which protocol the server spoke
// ("ls-remote< version 2"); anything else reads as v0, the stricter judgement.
const SPOKE_V2 = /packet:\s+\S+< version 2$/m;
/** The trace's own lines ("07:05:12.161626 pkt-line.c:80  packet: ..."), left out of what people read. */
const PACKET_TRACE = /^\d\d:\d\d:\d\d\.\d+ \S+:\d+\s+packet:.*\n?/gm;

/** Parse ls-remote output: symref lines ("ref: <target>\t<name>") and "<sha>\t<name>" lines. */
function parseListing(text: string): { symrefs: Map<string, string>; values: Map<string, string> } {
  const symrefs = new Map<string, string>();
  const values = new Map<string, string>();
  for (const m of text.matchAll(/^ref: (\S+)\t(\S+)$/gm)) symrefs.set(m[2]!, m[1]!);
  // "^{}" lines are peeled tags, not refs.
  for (const m of text.matchAll(/^([0-9a-f]+)\t(refs\/\S+)$/gm)) if (!m[2]!.endsWith("^{}")) values.set(m[2]!, m[1]!);
  return { symrefs, values };
}

/** Every ref upstream lists, with the protocol it spoke (one `git ls-remote --symref`). */
export async function listUpstream(url: string, list: ListRefs, what: string): Promise<Listing> {
  const r = await list(["ls-remote", "--symref", url], { GIT_TRACE_PACKET: "1" });
  if (r.code !== 0) throw new BbError("SUBPROCESS", `${what}: ${redactCredentials(r.stderr.replace(PACKET_TRACE, "").trim())}`);
  return { protocol: SPOKE_V2.test(r.stderr) ? "v2" : "v0", ...parseListing(r.stdout) };
}

/** The refs a push to each of `refs` may move instead, by what `listing` shows. */
export function upstreamAliases(listing: Listing, refs: string[]): Aliases {
  const targets = new Map<string, string[]>();
  if (listing.protocol === "v2") {
    for (const [name, target] of listing.symrefs) if (refs.includes(name)) targets.set(name, [target]);
    return { protocol: "v2", targets };
  }
  for (const ref of refs) {
    const at = listing.values.get(ref);
    if (at === undefined) continue;
    const same = [...listing.values].filter(([name, sha]) => sha === at && name !== ref).map(([name]) => name);
    if (same.length) targets.set(ref, same);
  }
  return { protocol: "v0", targets };
}
