// The host address a smolmachines bottle's bundle publishes on, which is also the only
// address its VM may reach (TSI allowlist). Each bottle gets its own loopback address, so
// its VM cannot reach another bottle's ports or host services listening on 127.0.0.1:
//   macOS: an alias from 127.0.0.16-31, added to lo0 once per boot (one sudo prompt for all).
//   Linux: any of 127.0.0.16-254; all of 127/8 is local already, so nothing to add. (The
//          original used 127.0.0.1 on Linux, which let a VM reach every host loopback
//          service and every other bottle's published ports.)
// Services listening on the wildcard address stay reachable from any loopback address.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { BbError } from "./errors.ts";
import { log } from "./log.ts";
import { readPlanFile } from "./plan/io.ts";
import { run } from "./proc.ts";

export const MAC_POOL = Array.from({ length: 16 }, (_, i) => `127.0.0.${16 + i}`);
export const LINUX_POOL = Array.from({ length: 239 }, (_, i) => `127.0.0.${16 + i}`);

/** The first pool address no other bottle's plan holds. */
export function pickFromPool(taken: Set<string>, pool: string[] = MAC_POOL): string {
  const free = pool.find((a) => !taken.has(a));
  if (!free) throw new BbError("BUNDLE", `All ${pool.length} loopback addresses (${pool[0]}-${pool[pool.length - 1]}) are taken by other bottles: stop one (bb-list, bb-cleanup)`);
  return free;
}

async function takenAddresses(stateRoot: string, exceptSlug: string): Promise<Set<string>> {
  const taken = new Set<string>();
  let slugs: string[] = [];
  try {
    slugs = readdirSync(join(stateRoot, "bottles"));
  } catch {
    return taken;
  }
  for (const slug of slugs) {
    if (slug === exceptSlug) continue;
    const addr = await readPlanFile(join(stateRoot, "bottles", slug, "plan.json")).then((p) => p.bundle?.loopbackAddr, () => undefined);
    if (addr) taken.add(addr);
  }
  return taken;
}

async function ensureMacAliases(): Promise<void> {
  const r = await run(["ifconfig", "lo0"]);
  const missing = MAC_POOL.filter((a) => !r.stdout.includes(`inet ${a} `));
  if (missing.length === 0) return;
  log.step(`loopback: adding ${missing.length} lo0 aliases (${MAC_POOL[0]}-${MAC_POOL[15]}) once for this boot; sudo may ask for your password`);
  const script = missing.map((a) => `ifconfig lo0 alias ${a} up`).join(" && ");
  await run(["sudo", "sh", "-c", script], { what: "Cannot add loopback aliases" });
}

export async function loopbackFor(opts: { platform: string; stateRoot: string; slug: string }): Promise<string> {
  if (opts.platform !== "darwin") return pickFromPool(await takenAddresses(opts.stateRoot, opts.slug), LINUX_POOL);
  await ensureMacAliases();
  return pickFromPool(await takenAddresses(opts.stateRoot, opts.slug));
}
