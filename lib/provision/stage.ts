// Staging what bb-provision places in the bottle: a folder laid out like the guest's root
// (CA, ~/.gitconfig, prompt, skills, MCP config, the host checkout), packed as one tar
// that the provisioning script unpacks at /. Built on the host so the guest needs nothing
// but tar, and the whole provisioning is one exec.
import { existsSync } from "node:fs";
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify as toToml } from "smol-toml";
import { AGENT } from "../layout.ts";
import type { Plan } from "../plan/schema.ts";
import { run } from "../proc.ts";
import { inlineGitDir, linkedGitDir } from "./linked-git.ts";
import { scrubGitCredentials } from "./scrub-git.ts";

type Ready = Plan & { bundle: NonNullable<Plan["bundle"]>; vm: NonNullable<Plan["vm"]> };

/** ~/.gitconfig: every declared upstream rewritten to git-gate, plus git_user. */
export function gitconfigText(plan: Ready): string {
  const lines: string[] = [];
  const gate = plan.bundle.agentUrls.gitGate;
  if (gate && plan.bottle.git) {
    for (const u of plan.bottle.git.upstreams) {
      lines.push(`[url "${gate}/${u.host}/"]`);
      for (const from of [`https://${u.host}/`, `http://${u.host}/`, `git@${u.host}:`, `ssh://git@${u.host}/`, `git://${u.host}/`]) {
        lines.push(`\tinsteadOf = ${from}`);
      }
    }
  }
  const gu = plan.bottle.gitUser;
  if (gu && (gu.name || gu.email)) {
    lines.push("[user]");
    if (gu.name) lines.push(`\tname = ${gu.name}`);
    if (gu.email) lines.push(`\temail = ${gu.email}`);
  }
  lines.push("[init]", "\tdefaultBranch = main");
  return lines.join("\n") + "\n";
}

export function skillsDir(plan: Plan): string {
  switch (plan.agent.provider) {
    case "claude":
      return `${AGENT.home}/.claude/skills`;
    case "codex":
      return `${AGENT.home}/.codex/skills`;
    case "shell":
      return `${AGENT.home}/.bot-bottle/skills`;
  }
}

export interface Staged {
  /** Credentials taken out of the copied checkout's .git/config (described, no values). */
  scrubbed: string[];
  tarFile: string;
  cleanup: () => Promise<void>;
}

/** Build the staging tree and its tar. */
export async function stage(plan: Ready, opts: { cwd: string | null; agentFiles?: Record<string, string> }): Promise<Staged> {
  const root = await mkdtemp(join(tmpdir(), `bb-provision-${plan.slug}-`));
  await chmod(root, 0o755); // mkdtemp's 0700 must not land on the guest's directories
  const at = (guestPath: string) => join(root, guestPath);
  const put = async (guestPath: string, content: string | Buffer) => {
    await mkdir(join(at(guestPath), ".."), { recursive: true });
    await writeFile(at(guestPath), content);
  };
  try {
    await put(AGENT.caFile, await readFile(plan.bundle.caCert));
    await put(`${AGENT.home}/.gitconfig`, gitconfigText(plan));
    if (plan.files.prompt) {
      const prompt = await readFile(plan.files.prompt);
      await put(AGENT.promptFile, prompt);
      if (plan.agent.provider === "codex") await put(`${AGENT.home}/.codex/AGENTS.md`, prompt);
    }
    for (const s of plan.agent.skills) {
      await cp(s.path, at(`${skillsDir(plan)}/${s.name}`), { recursive: true });
    }
    const mcp = plan.bundle.agentUrls.supervise;
    if (mcp && plan.agent.provider === "codex") {
      await put(`${AGENT.home}/.codex/config.toml`, toToml({ mcp_servers: { supervise: { url: mcp } } }) + "\n");
    }
    if (mcp) await put(`${AGENT.home}/.bot-bottle/mcp.json`, JSON.stringify({ mcpServers: { supervise: { type: "http", url: mcp } } }, null, 2) + "\n");
    for (const [guestPath, content] of Object.entries(opts.agentFiles ?? {})) await put(guestPath, content);
    let scrubbed: string[] = [];
    if (opts.cwd) {
      await mkdir(at(AGENT.workdir), { recursive: true });
      await cp(opts.cwd, at(AGENT.workdir), { recursive: true, verbatimSymlinks: true });
      const linked = await linkedGitDir(opts.cwd);
      if (linked) await inlineGitDir(linked, join(at(AGENT.workdir), ".git"));
      const gitConfig = join(at(AGENT.workdir), ".git", "config");
      if (existsSync(gitConfig)) scrubbed = await scrubGitCredentials(gitConfig);
    }
    const tarFile = `${root}.tar`;
    await run(["tar", "-C", root, "--numeric-owner", "-cf", tarFile, "."], { what: "Cannot pack the provisioning files" });
    await rm(root, { recursive: true, force: true });
    return { tarFile, scrubbed, cleanup: () => rm(tarFile, { force: true }) };
  } catch (e) {
    await rm(root, { recursive: true, force: true });
    throw e;
  }
}
