// Loading an agent and its resolved bottle from a manifest directory:
//   <dir>/agents/<agent>.md   agents
//   <dir>/<bottle>.md         bottles
//   <dir>/skills/<skill>/     skills (copied into the agent's home by bb-provision)
// Only the agent and its bottle chain are parsed: a broken unrelated file never blocks.
import { existsSync, lstatSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { PROVIDER_HOSTS } from "../credentials.ts";
import { BbError } from "../errors.ts";
import type { AgentSection, BottleSection } from "../plan/schema.ts";
import { parseAgent, type AgentDecl } from "./agent.ts";
import { parseBottle, type BottleDecl } from "./bottle.ts";
import { resolveBottle, type BottleSource } from "./extends.ts";
import { FieldReader } from "./fields.ts";
import { readFrontmatter } from "./frontmatter.ts";
import { didYouMean } from "./suggest.ts";

interface LoadedAgent {
  agent: AgentDecl;
  bottle: BottleDecl;
  chain: string[];
  skills: { name: string; path: string }[];
}

function mdNames(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".md") && !f.startsWith(".") && f.toLowerCase() !== "readme.md" && notAFolder(join(dir, f)))
    .map((f) => f.slice(0, -3))
    .sort();
}

/** A broken or looping symlink counts as a file: only using it fails, naming it. */
function notAFolder(path: string): boolean {
  try {
    return !statSync(path).isDirectory();
  } catch {
    return true;
  }
}

function listAgents(manifestDir: string): string[] {
  return mdNames(join(manifestDir, "agents"));
}

function listBottles(manifestDir: string): string[] {
  return mdNames(manifestDir);
}

export function bottleSource(manifestDir: string): BottleSource {
  const names = listBottles(manifestDir);
  return {
    names: () => names,
    load: async (name) => parseBottle(name, await readFrontmatter(join(manifestDir, `${name}.md`))),
  };
}

export async function loadAgent(manifestDir: string, name: string): Promise<LoadedAgent> {
  if (!existsSync(manifestDir) || !statSync(manifestDir).isDirectory()) {
    const what = existsSync(manifestDir) ? "is not a folder" : "does not exist";
    throw new BbError("MANIFEST_NOT_FOUND", `Manifest dir ${manifestDir} ${what} (pass --manifest-dir DIR, or run from a bot-bottle checkout)`);
  }
  const agents = listAgents(manifestDir);
  // Told apart from a name that is not there: "" and ".." are no name at all (most often a
  // variable that was empty, or a path typed where a name goes).
  if (/^\.*$/.test(name.trim())) {
    const what = name.trim() === "" ? "the agent name is empty" : `"${name}" is not an agent name`;
    throw new BbError("USAGE", `${what}: an agent is named by its file in ${join(manifestDir, "agents")}, without .md; agents: ${agents.join(", ") || "none"}`, {
      details: { agent: name, agents },
    });
  }
  if (!agents.includes(name)) {
    throw new BbError(
      "MANIFEST_NOT_FOUND",
      `no agent named "${name}" in ${join(manifestDir, "agents")}${didYouMean(name, agents)}; agents: ${agents.join(", ") || "none"}`,
      { details: { agent: name, agents } },
    );
  }
  const agent = parseAgent(name, await readFrontmatter(join(manifestDir, "agents", `${name}.md`)));
  const source = bottleSource(manifestDir);
  if (!source.names().includes(agent.bottle)) {
    new FieldReader(agent.file).fail("bottle", `no bottle named "${agent.bottle}"${didYouMean(agent.bottle, source.names())}; bottles: ${source.names().join(", ") || "none"}`);
  }
  const resolved = await resolveBottle(agent.bottle, source);
  checkBottle(resolved.decl);
  if (agent.forwardHostCredentials) {
    // Checked here, before the preflight and its y/N, not when bb-bundle needs the slot.
    const hosts: readonly string[] = PROVIDER_HOSTS[agent.provider];
    if (!(resolved.decl.egress ?? []).some((r) => hosts.includes(r.host))) {
      new FieldReader(agent.file).fail(
        "forward_host_credentials",
        hosts.length
          ? `needs an egress route for ${hosts.join(" or ")} in bottle ${agent.bottle}, where the ${agent.provider} login is used; add one under egress`
          : `provider ${agent.provider} has no login to forward`,
      );
    }
  }
  const skills = agent.skills.map((s, i) => {
    const path = join(manifestDir, "skills", s);
    checkSkill(new FieldReader(agent.file), `skills[${i}]`, path);
    return { name: s, path };
  });
  return { agent, bottle: resolved.decl, chain: resolved.chain, skills };
}

/**
 * A skill is copied into the bottle as it is, a link inside it kept as a link: a folder
 * that is itself a link would arrive as one leading nowhere, and a FIFO, socket or device
 * cannot be copied at all. Both are refused now, before the bottle is started.
 */
function checkSkill(r: FieldReader, field: string, path: string): void {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (st?.isSymbolicLink()) {
    r.fail(field, `the skill folder ${path} is a symlink (to ${readlinkSync(path)}); skills are copied with links kept as links, so it would lead nowhere in the bottle: put the folder itself there`);
  }
  if (!st?.isDirectory()) r.fail(field, `no skill folder ${path}`);
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const file = join(dir, name);
      const f = lstatSync(file);
      if (f.isDirectory()) walk(file);
      else if (!f.isFile() && !f.isSymbolicLink()) {
        r.fail(field, `skill ${path} holds ${file}, a ${f.isFIFO() ? "FIFO" : f.isSocket() ? "socket" : "device"}: a skill may hold only files, folders and links`);
      }
    }
  };
  walk(path);
}

/** Checks that span fields (after merging), naming the file that declared the field. */
function checkBottle(b: BottleDecl) {
  const routed = new Set((b.egress ?? []).map((r) => r.host));
  (b.allowHosts ?? []).forEach((h, i) => {
    if (h.tlsPassthrough && routed.has(h.host)) {
      new FieldReader(b.origin.allow_hosts ?? b.file).fail(
        `allow_hosts[${i}].tls_passthrough`,
        `"${h.host}" has an egress route, so it cannot be tls_passthrough (egress must read the request to inject the credential)`,
      );
    }
  });
  const seen = new Set<string>();
  (b.egress ?? []).forEach((r, i) => {
    if (seen.has(r.host)) new FieldReader(b.origin.egress ?? b.file).fail(`egress[${i}].host`, `"${r.host}" has more than one route`);
    seen.add(r.host);
  });
}

/** The plan's agent section. */
export function agentSection(l: LoadedAgent): AgentSection {
  return {
    name: l.agent.name,
    file: l.agent.file,
    provider: l.agent.provider,
    bottle: l.agent.bottle,
    skills: l.skills,
    env: l.agent.env,
    forwardHostCredentials: l.agent.forwardHostCredentials,
    hasPrompt: l.agent.prompt.length > 0,
  };
}

/** The plan's bottle section: token slots and placeholders assigned in route order. */
export function bottleSection(l: LoadedAgent): BottleSection {
  const b = l.bottle;
  return {
    name: b.name,
    file: b.file,
    chain: l.chain,
    env: b.env ?? {},
    git: b.git ?? null,
    gitUser: b.gitUser ?? null,
    egress: (b.egress ?? []).map((r, i) => ({
      host: r.host,
      auth: r.auth,
      header: r.header,
      tokenEnv: r.tokenEnv,
      slot: `EGRESS_TOKEN_${i}`,
      agentEnv: r.agentEnv,
      // Deliberately matches no DLP detector: the firewall must let it through to egress.
      placeholder: `bb-placeholder-egress-token-${i}`,
    })),
    allowHosts: b.allowHosts ?? [],
    sensitiveEnv: b.sensitiveEnv ?? [],
    supervise: b.supervise ?? false,
    dlpDisable: b.dlpDisable ?? [],
    limits: b.limits ?? { memoryMiB: null, cpus: null },
  };
}
