// Resolving `extends` chains with the original's merge rules:
//   env       merges by key, child wins
//   git_user  overlays per field (a child's set field wins)
//   limits    overlays per field, like git_user
//   everything else (git, egress, allow_hosts, sensitive_env, supervise, dlp_disable)
//             is replaced whole when the child declares it
// Missing parents, self-extends and cycles are errors naming the file and the chain.
// Resolution is memoised per name, so diamonds parse each parent once.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { BbError } from "../errors.ts";
import { repoRoot } from "../paths.ts";
import type { BottleDecl } from "./bottle.ts";
import { didYouMean } from "./suggest.ts";

interface ResolvedBottle {
  decl: BottleDecl; // merged fields
  chain: string[]; // child first
}

export interface BottleSource {
  /** Every bottle name that exists (for suggestions). */
  names(): string[];
  /** Parse one bottle; only called for names in names(). */
  load(name: string): Promise<BottleDecl>;
}

export async function resolveBottle(name: string, source: BottleSource, memo = new Map<string, Promise<ResolvedBottle>>()): Promise<ResolvedBottle> {
  return resolve(name, source, memo, []);
}

function resolve(name: string, source: BottleSource, memo: Map<string, Promise<ResolvedBottle>>, stack: BottleDecl[]): Promise<ResolvedBottle> {
  const cached = memo.get(name);
  if (cached && !stack.some((s) => s.name === name)) return cached;
  const p = (async () => {
    const decl = await source.load(name);
    if (decl.extends === undefined) return { decl, chain: [name] };
    const parentName = decl.extends;
    if (parentName === name) {
      throw new BbError("MANIFEST_EXTENDS", `${decl.file}: field "extends": bottle "${name}" extends itself`, { details: { file: decl.file, field: "extends" } });
    }
    const cycleAt = stack.findIndex((s) => s.name === parentName);
    if (cycleAt !== -1) {
      const chain = [...stack.slice(cycleAt).map((s) => s.name), name, parentName];
      throw new BbError("MANIFEST_EXTENDS", `${decl.file}: field "extends": cycle: ${chain.join(" -> ")}`, {
        details: { file: decl.file, field: "extends", chain },
      });
    }
    if (!source.names().includes(parentName)) {
      const names = source.names();
      // Your own manifest dir is read alone: a shipped parent must be copied into it.
      const shipped = join(repoRoot(), "bottles", `${parentName}.md`);
      const copy = existsSync(shipped) && dirname(decl.file) !== dirname(shipped) ? ` (bot-bottle ships one: copy ${shipped} into ${dirname(decl.file)})` : "";
      throw new BbError(
        "MANIFEST_EXTENDS",
        `${decl.file}: field "extends": no bottle named "${parentName}"${didYouMean(parentName, names)}; bottles: ${names.join(", ") || "none"}${copy}`,
        { details: { file: decl.file, field: "extends", missing: parentName } },
      );
    }
    const parent = await resolve(parentName, source, memo, [...stack, decl]);
    return { decl: merge(parent.decl, decl), chain: [name, ...parent.chain] };
  })();
  memo.set(name, p);
  return p;
}

/** Child over parent, field by field. */
function merge(parent: BottleDecl, child: BottleDecl): BottleDecl {
  const out: BottleDecl = {
    ...parent,
    name: child.name,
    file: child.file,
    extends: child.extends,
    description: child.description,
    origin: { ...parent.origin, ...child.origin },
  };
  if (parent.env !== undefined || child.env !== undefined) out.env = { ...(parent.env ?? {}), ...(child.env ?? {}) };
  if (child.gitUser !== undefined) {
    out.gitUser = { name: child.gitUser.name ?? parent.gitUser?.name ?? null, email: child.gitUser.email ?? parent.gitUser?.email ?? null };
  }
  if (child.limits !== undefined) {
    out.limits = { memoryMiB: child.limits.memoryMiB ?? parent.limits?.memoryMiB ?? null, cpus: child.limits.cpus ?? parent.limits?.cpus ?? null };
  }
  for (const key of ["git", "egress", "allowHosts", "sensitiveEnv", "supervise", "dlpDisable"] as const) {
    if (child[key] !== undefined) (out as unknown as Record<string, unknown>)[key] = child[key];
  }
  return out;
}
