// The per-bottle files bb-prepare writes into the bottle's state dir: what each sidecar
// daemon reads (firewall policy, egress routes, git-gate config and hooks, the supervise
// queue) and the agent's prompt. Secret values never land here, only slot names.
// Modes: dirs 0700 and files 0600, since some hold private material (prompt, plan); the
// bundle runs as root inside its own container, so it can still read them.
import { writeFileAtomic } from "../fs-atomic.ts";
import { dirWithMode } from "../paths.ts";
import { join } from "node:path";
import { gitGateHookFiles } from "../git-gate-hooks.ts";
import { BUNDLE_PATHS } from "../layout.ts";
import type { BottleSection, FilesSection, Service } from "../plan/schema.ts";
import { CONFIG_VERSION, type EgressRoutes, type FirewallPolicy, type GitGateConfig } from "../sidecar-config.ts";

export function servicesFor(bottle: BottleSection): Service[] {
  const s: Service[] = ["firewall"];
  if (bottle.egress.length > 0) s.push("egress");
  if (bottle.git && bottle.git.repos.length > 0) s.push("git-gate");
  if (bottle.supervise) s.push("supervise");
  return s;
}

/** Sensitive env vars that are also a route's token: egress alone holds their value (its
 * token slot), so no scanner gets it; the agent only ever holds a placeholder for them. */
export function routeTokensIn(bottle: BottleSection): string[] {
  return bottle.sensitiveEnv.filter((name) => bottle.egress.some((r) => r.tokenEnv === name));
}

/** BB_SENSITIVE_<n> slots for the bottle's sensitive host env vars (route tokens aside). */
export function sensitiveSlots(bottle: BottleSection) {
  const tokens = routeTokensIn(bottle);
  return bottle.sensitiveEnv.filter((name) => !tokens.includes(name)).map((name, i) => ({ name, slot: `BB_SENSITIVE_${i}` }));
}

function firewallPolicy(slug: string, bottle: BottleSection): FirewallPolicy {
  const hosts = new Map<string, FirewallPolicy["hosts"][number]>();
  for (const h of bottle.allowHosts) hosts.set(h.host, { host: h.host, tlsPassthrough: h.tlsPassthrough, routed: false, ...(h.ports ? { ports: h.ports } : {}) });
  for (const r of bottle.egress) {
    const replaced = ["authorization", "x-api-key", ...(r.header ? [r.header.toLowerCase()] : [])];
    // A routed host may also be listed in allow_hosts for its ports.
    const ports = hosts.get(r.host)?.ports;
    hosts.set(r.host, { host: r.host, tlsPassthrough: false, routed: true, replacedHeaders: replaced, ...(ports ? { ports } : {}) });
  }
  return {
    version: CONFIG_VERSION,
    slug,
    hosts: [...hosts.values()],
    dlp: { disabled: bottle.dlpDisable as FirewallPolicy["dlp"]["disabled"], sensitive: sensitiveSlots(bottle) },
  };
}

function egressRoutes(bottle: BottleSection): EgressRoutes {
  return { version: CONFIG_VERSION, routes: bottle.egress.map((r) => ({ host: r.host, auth: r.auth, header: r.header, slot: r.slot })) };
}

/** A file:// upstream is a folder on this machine, which bb-bundle mounts into the bundle
 * (localUpstreamPath): git-gate reaches it there. Other URLs are git-gate's as they are. */
function gateUrl(url: string, i: number): string {
  return url.startsWith("file://") ? `file://${BUNDLE_PATHS.localUpstreams}/${i}` : url;
}

/** The host folder of a file:// upstream URL. */
export function localUpstreamPath(url: string): string {
  return decodeURIComponent(new URL(url).pathname);
}

function gitGateConfig(bottle: BottleSection): GitGateConfig | null {
  if (!bottle.git) return null;
  return {
    version: CONFIG_VERSION,
    upstreams: bottle.git.upstreams.map((u, i) => ({ host: u.host, url: gateUrl(u.url, i), identity: u.identityFile ? `identity-${i}` : null, hostKeys: u.hostKeys })),
    repos: bottle.git.repos,
    push: bottle.git.push,
    dlp: { disabled: bottle.dlpDisable as GitGateConfig["dlp"]["disabled"], sensitive: sensitiveSlots(bottle) },
  };
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + "\n";

interface WriteFilesInput {
  dir: string;
  slug: string;
  bottle: BottleSection;
  services: Service[];
  prompt: string;
}

/** Write every per-bottle file; returns their paths for the plan's files section. */
export async function writeBottleFiles(input: WriteFilesInput): Promise<FilesSection> {
  const { dir, slug, bottle, services } = input;
  // The bottle's folder stays private to you (0700). Inside it, what the firewall, egress
  // and supervise read or write is open to your group: in the bundle they run under uids
  // of their own that share only your group (sidecar-image/init/identity.ts), git-gate's
  // too.
  await dirWithMode(dir, 0o700);
  const sub = (name: string, mode = 0o700) => dirWithMode(join(dir, name), mode);

  const firewallPolicyPath = join(await sub("firewall", 0o750), "policy.json");
  await writeFileAtomic(firewallPolicyPath, json(firewallPolicy(slug, bottle)), 0o640);

  let egressRoutesPath: string | null = null;
  if (services.includes("egress")) {
    egressRoutesPath = join(await sub("egress", 0o750), "routes.json");
    await writeFileAtomic(egressRoutesPath, json(egressRoutes(bottle)), 0o640);
  }

  let gitGateConfigPath: string | null = null;
  let gitGateHooksPath: string | null = null;
  const gg = gitGateConfig(bottle);
  if (services.includes("git-gate") && gg) {
    const gdir = await sub("git-gate", 0o750);
    gitGateConfigPath = join(gdir, "config.json");
    await writeFileAtomic(gitGateConfigPath, json(gg), 0o640);
    gitGateHooksPath = await sub("git-gate/hooks", 0o750);
    for (const [name, content] of Object.entries(gitGateHookFiles())) {
      await writeFileAtomic(join(gitGateHooksPath, name), content, 0o750);
    }
  }

  let queue: string | null = null;
  if (services.includes("supervise")) {
    await sub("supervise", 0o770);
    queue = await sub("supervise/queue", 0o770);
  }

  let prompt: string | null = null;
  if (input.prompt.length > 0) {
    prompt = join(dir, "prompt.md");
    await writeFileAtomic(prompt, input.prompt + "\n");
  }

  return {
    dir,
    plan: join(dir, "plan.json"),
    firewallPolicy: firewallPolicyPath,
    egressRoutes: egressRoutesPath,
    gitGateConfig: gitGateConfigPath,
    gitGateHooks: gitGateHooksPath,
    superviseQueue: queue,
    prompt,
  };
}
