// The host address a smolmachines bottle's bundle publishes on, which is also the only
// address its VM may reach (TSI allowlist). Each bottle gets its own loopback address, so
// its VM cannot reach another bottle's ports or host services listening on 127.0.0.1:
//   macOS: an alias from 127.0.0.16-31, added to lo0 once per boot (one sudo prompt for all).
//   Linux: any of 127.0.0.16-254; all of 127/8 is local already, so nothing to add. (The
//          original used 127.0.0.1 on Linux, which let a VM reach every host loopback
//          service and every other bottle's published ports.)
// Services listening on the wildcard address stay reachable from any loopback address.
import { readdirSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BbError } from "./errors.ts";
import { log } from "./log.ts";
import { loopbackOccupants, type OccupantSources } from "./loopback-occupants.ts";
import { withDirLock } from "./dir-lock.ts";
import { readSavedPlan } from "./plan/io.ts";
import { readRegularFile } from "./read-regular.ts";
import { run } from "./proc.ts";

export const MAC_POOL = Array.from({ length: 16 }, (_, i) => `127.0.0.${16 + i}`);
export const LINUX_POOL = Array.from({ length: 239 }, (_, i) => `127.0.0.${16 + i}`);

/** The first pool address no other bottle's plan holds. */
export function pickFromPool(taken: Set<string>, pool: string[] = MAC_POOL): string {
  const free = pool.find((a) => !taken.has(a));
  if (!free) throw new BbError("BUNDLE", `All ${pool.length} loopback addresses (${pool[0]}-${pool[pool.length - 1]}) are taken by other bottles or in use on this host: stop one (bb-list, bb-cleanup)`);
  return free;
}

/** Each bottle's address: reserved in its state dir when picked (below), or recorded in its plan. */
async function addressesByBottle(stateRoot: string): Promise<Map<string, string>> {
  const held = new Map<string, string>();
  let slugs: string[] = [];
  try {
    slugs = readdirSync(join(stateRoot, "bottles"));
  } catch {
    return held;
  }
  for (const slug of slugs) {
    const dir = join(stateRoot, "bottles", slug);
    // Regular files only, the plan's too: a FIFO in one bottle's folder would otherwise hold
    // every smolmachines start, Ctrl-C and all. One that is not is no address held.
    const reserved = await readRegularFile(join(dir, RESERVATION)).then((t) => t.trim(), () => "");
    const addr = reserved || (await readSavedPlan(join(dir, "plan.json")).then((p) => p.bundle?.loopbackAddr, () => undefined));
    if (addr) held.set(slug, addr);
  }
  return held;
}

/** The file in a bottle's state dir that holds its address from the moment it is picked:
 * its plan records it only once the bundle is up, minutes later on a first image build. */
const RESERVATION = "loopback-addr";

async function ensureMacAliases(): Promise<void> {
  const r = await run(["ifconfig", "lo0"]);
  const missing = MAC_POOL.filter((a) => !r.stdout.includes(`inet ${a} `));
  if (missing.length === 0) return;
  log.step(`loopback: adding ${missing.length} lo0 aliases (${MAC_POOL[0]}-${MAC_POOL[15]}) once for this boot; sudo may ask for your password`);
  const script = missing.map((a) => `ifconfig lo0 alias ${a} up`).join(" && ");
  await run(["sudo", "sh", "-c", script], { what: "Cannot add loopback aliases" });
}

/** This bottle's address: the one it already holds (a resumed bottle keeps it), else the
 * first one no other bottle holds, reserved in its state dir before anything is started.
 * An address something on this host is bound to (another state root's or user's bundle, a
 * host service) is no one's to take: the VM allowed it would reach that too. */
export async function loopbackFor(opts: { platform: string; stateRoot: string; slug: string; occupants?: OccupantSources }): Promise<string> {
  const mac = opts.platform === "darwin";
  if (mac) await ensureMacAliases();
  const pool = mac ? MAC_POOL : LINUX_POOL;
  // Held for a few ms, so two bottles starting at once cannot pick the same address.
  const lock = join(opts.stateRoot, "loopback.lock");
  const busy = () => new BbError("BUNDLE", `Cannot pick a loopback address: ${lock} has been held for a minute (remove it if no bottle is starting)`);
  return withDirLock(lock, { waitMs: 60_000, staleMs: 30_000, busy }, async () => {
    const held = await addressesByBottle(opts.stateRoot);
    const own = held.get(opts.slug);
    held.delete(opts.slug);
    const taken = new Set(held.values());
    const inUse = new Set((await loopbackOccupants({ ...opts.occupants, lenient: true })).map((o) => o.addr));
    for (const a of pool) {
      if (!inUse.has(a)) continue;
      if (a === own) log.info(`loopback: ${a}, which bottle ${opts.slug} had, is in use on this host now: picking another`);
      taken.add(a);
    }
    const addr = own && pool.includes(own) && !taken.has(own) ? own : pickFromPool(taken, pool);
    await writeFile(join(opts.stateRoot, "bottles", opts.slug, RESERVATION), `${addr}\n`);
    return addr;
  });
}
