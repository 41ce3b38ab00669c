// Which refs a push may move upstream besides the ones it names. Upstream may hold a ref
// as a symbolic ref to another ("refs/heads/master" -> main), and its receive-pack moves
// (or deletes) the target when the symref is pushed; the gate's mirror keeps the symref as
// a plain ref, so the policy alone would judge such a push by the wrong name.
//
// A protocol v2 ref listing names every symref's target. A server that speaks only v0 (an
// sshd that does not pass GIT_PROTOCOL on, a web server that does not pass the
// Git-Protocol header) shows HEAD's alone; a symref then shows up only as a ref at the
// same commit as its target, so every such ref counts as a possible target.
import { BbError } from "../../lib/errors.ts";
import { redactCredentials } from "../../lib/proc.ts";

export type ListRefs = (args: string[], env: Record<string, string | undefined>) => Promise<{ code: number; stdout: string; stderr: string }>;

export interface Aliases {
  /** "v2": `targets` are upstream's symrefs; "v0": refs that may be (same commit, not known). */
  protocol: "v0" | "v2";
  /** For each pushed ref that exists upstream, the refs a push to it may move instead. */
  targets: Map<string, string[]>;
}

// The client's packet trace is the only place git says which protocol the server spoke
// ("ls-remote< version 2"); anything else reads as v0, the stricter judgement.
const SPOKE_V2 = /packet:\s+\S+< version 2$/m;

/** Parse ls-remote output: symref lines ("ref: <target>\t<name>") and "<sha>\t<name>" lines. */
function parseListing(text: string): { symrefs: Map<string, string>; values: Map<string, string> } {
  const symrefs = new Map<string, string>();
  const values = new Map<string, string>();
  for (const m of text.matchAll(/^ref: (\S+)\t(\S+)$/gm)) symrefs.set(m[2]!, m[1]!);
  // "^{}" lines are peeled tags, not refs.
  for (const m of text.matchAll(/^([0-9a-f]+)\t(refs\/\S+)$/gm)) if (!m[2]!.endsWith("^{}")) values.set(m[2]!, m[1]!);
  return { symrefs, values };
}

export async function upstreamAliases(url: string, refs: string[], list: ListRefs, what: string): Promise<Aliases> {
  const ls = async (args: string[], env: Record<string, string | undefined> = {}) => {
    const r = await list(["ls-remote", "--symref", url, ...args], env);
    if (r.code !== 0) throw new BbError("SUBPROCESS", `${what}: ${redactCredentials(r.stderr.trim())}`);
    return r;
  };
  const first = await ls(refs, { GIT_TRACE_PACKET: "1" });
  const targets = new Map<string, string[]>();
  if (SPOKE_V2.test(first.stderr)) {
    for (const [name, target] of parseListing(first.stdout).symrefs) if (refs.includes(name)) targets.set(name, [target]);
    return { protocol: "v2", targets };
  }
  // v0 sends every ref whatever the patterns, but the client keeps only the matching ones.
  const { values } = parseListing((await ls([])).stdout);
  for (const ref of refs) {
    const at = values.get(ref);
    if (at === undefined) continue;
    const same = [...values].filter(([name, sha]) => sha === at && name !== ref).map(([name]) => name);
    if (same.length) targets.set(ref, same);
  }
  return { protocol: "v0", targets };
}
