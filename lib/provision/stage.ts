// Staging what bb-provision places in the bottle: a folder laid out like the guest's root
// (CA, ~/.gitconfig, prompt, skills, MCP config, the host checkout as a tar of its own),
// packed as one tar that the provisioning script unpacks at /. Built on the host so the
// guest needs nothing but tar, and the whole provisioning is one exec.
import { existsSync, realpathSync, statSync } from "node:fs";
import { chmod, cp, lstat, mkdir, mkdtemp, readlink, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { stringify as toToml } from "smol-toml";
import { copyRegularFile } from "../copy-regular.ts";
import { AGENT } from "../layout.ts";
import { dirWithMode } from "../paths.ts";
import { log } from "../log.ts";
import type { AgentUrls } from "../http/agent-key.ts";
import type { Plan } from "../plan/schema.ts";
import { readRegularFile } from "../read-regular.ts";
import { bundleEnvScript } from "../vm/env.ts";
import { gitConfigFiles } from "./git-configs.ts";
import { below, packFolder } from "./pack.ts";
import { adjustLinkedConfig, linkedGitConfigs, linkedGitDir, packGitDir } from "./linked-git.ts";
import { scrubGitCredentials } from "./scrub-git.ts";

type Ready = Plan & { bundle: NonNullable<Plan["bundle"]>; vm: NonNullable<Plan["vm"]> };

/** ~/.gitconfig: every declared upstream rewritten to git-gate (`urls`: the agent's, with
 * the bottle's agent key where it has one), plus git_user. */
export function gitconfigText(plan: Ready, urls: AgentUrls = plan.bundle.agentUrls): string {
  const lines: string[] = [];
  const gate = urls.gitGate;
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
    if (gu.name) lines.push(`\tname = ${configValue(gu.name)}`);
    if (gu.email) lines.push(`\temail = ${configValue(gu.email)}`);
  }
  lines.push("[init]", "\tdefaultBranch = main");
  return lines.join("\n") + "\n";
}

/** A git config value, quoted: `#` and `;` would start a comment, `"` and `\` an escape,
 * and surrounding blanks would be dropped (R2-D2 #1, team; bots, CORP\bob). bb-prepare
 * refuses control characters; a plan written by other hands still cannot start a line. */
function configValue(v: string): string {
  const escaped = v.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, "\\n").replace(/\t/g, "\\t").replace(/\x08/g, "\\b");
  return `"${escaped}"`;
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

interface Staged {
  /** Credentials taken out of the copied checkout's .git/config (described, no values). */
  scrubbed: string[];
  tarFile: string;
  cleanup: () => Promise<void>;
}

/** The real path of `path` when it is a regular file, else null. */
const realFile = (path: string): string | null => {
  try {
    const real = realpathSync.native(path);
    return statSync(real).isFile() ? real : null;
  } catch {
    return null;
  }
};

/**
 * The checkout, packed straight from the host folder into a tar of its own (`tarFile`),
 * which the guest unpacks into workdir after the staging tar: copying it into the staging
 * tree first would create every file twice on the host, and creating files is what costs
 * (copying 20,000 small ones took 16-28 s here, packing them 0.3 s). Its git config files
 * (the repository's, its submodules', a nested clone's or bare repository's, and the files
 * they include) are left out of that tar: the staging tree carries copies with the
 * credentials taken out (returned: what went), and a file a config names for its secret (a
 * credential store, a cookie jar, a client key) is left out altogether. A .git that is a
 * link to a git dir elsewhere is left out too, and that git dir goes in a tar of its own
 * (`tars.gitDir`), unpacked into workdir/.git. Paths are real throughout: a file a config
 * names is left out at the path tar meets it by, whatever symlink the name went through.
 */
async function stageCheckout(cwd: string, stagedWorkdir: string, tars: { checkout: string; gitDir: string }): Promise<string[]> {
  await mkdir(stagedWorkdir, { recursive: true }); // where the guest unpacks the checkout's tar
  const root = realpathSync.native(cwd);
  const dotGit = join(root, ".git");
  const dotGitStat = await lstat(dotGit).catch(() => null);
  if (dotGitStat?.isSymbolicLink()) {
    log.warn(`provision: ${join(cwd, ".git")} is a symlink (to ${await readlink(dotGit)}); the copy keeps it as a link, which leads nowhere in the bottle, so the copy is no git repository there`);
  }
  const linked = dotGitStat?.isFile() ? await linkedGitDir(cwd) : null;
  // Every git config file the copy carries: the host file, its path in the copy, and the
  // path git opens it by (an included file's relative includes are read from there).
  const configs = (await gitConfigFiles(root, true)).map((f) => ({ host: f, name: relative(root, f), origin: f }));
  const linkedConfigs = linked ? await linkedGitConfigs(linked) : [];
  for (const [f, rel] of linkedConfigs) configs.push({ host: f, name: join(".git", rel), origin: f });
  /** Where a host file is in the copy, or null when the copy does not hold it. */
  const inCopy = (real: string): string | null => {
    const rel = below(root, real);
    const inGitDir = linked && below(linked.commonDir, real);
    return rel ?? (inGitDir ? join(".git", inGitDir) : null);
  };
  const leaveOut = new Set(configs.map((c) => c.host));
  const scrubbed: string[] = [];
  // configs grows as it goes: each included file that lies inside the copy joins it.
  for (let i = 0; i < configs.length; i++) {
    const { host, name, origin } = configs[i]!;
    const to = join(stagedWorkdir, name);
    await mkdir(dirname(to), { recursive: true });
    // Found a regular file (find -type f, realFile), but the checkout is yours to change
    // meanwhile: a FIFO there now is refused, not waited on.
    await copyRegularFile(host, to);
    const s = await scrubGitCredentials(to, { origin, base: root });
    if (linked && name === join(".git", "config") && existsSync(to)) await adjustLinkedConfig(to);
    scrubbed.push(...s.removed.map((r) => `${name}: ${r}`));
    for (const f of s.leaveOut) {
      leaveOut.add(f);
      const real = realFile(f);
      if (real) leaveOut.add(real);
    }
    for (const f of s.included) {
      const real = realFile(f);
      const at = real && !leaveOut.has(real) ? inCopy(real) : null;
      if (!real || at === null) continue;
      leaveOut.add(real);
      configs.push({ host: real, name: at, origin: f });
    }
  }
  log.step(`provision: packing your checkout ${cwd}`);
  const tarFile = tars.checkout;
  await mkdir(dirname(tarFile), { recursive: true });
  const { changed } = await packFolder({
    from: root,
    tarFile,
    names: ["."],
    leaveOut: [...leaveOut, ...(linked ? [dotGit] : [])],
    what: `Cannot pack the checkout ${cwd}`,
  });
  if (changed) log.warn(`provision: files in ${cwd} changed while it was packed; the bottle has them as tar read them: ${changed}`);
  if (linked) await packGitDir(linked, tars.gitDir, { configs: linkedConfigs, leaveOut });
  const size = [tarFile, tars.gitDir].filter((f) => existsSync(f)).reduce((n, f) => n + statSync(f).size, 0);
  log.step(`provision: checkout packed (${(size / 1048576).toFixed(1)} MiB)`);
  return scrubbed;
}

/**
 * Build the staging tree and its tar in the bottle's own state dir, under a folder only you
 * may enter: the copy of your checkout is yours alone while it is packed, and a start
 * killed half-way leaves it where bb-cleanup removes it with the bottle (not in $TMPDIR).
 */
export async function stage(plan: Ready, opts: { cwd: string | null; urls?: AgentUrls; agentFiles?: Record<string, string> }): Promise<Staged> {
  const urls = opts.urls ?? plan.bundle.agentUrls;
  const parent = join(plan.files.dir, "provision");
  await rm(parent, { recursive: true, force: true }); // what a killed provisioning left
  await dirWithMode(parent, 0o700);
  const root = await mkdtemp(join(parent, "stage-"));
  await chmod(root, 0o755); // mkdtemp's 0700 must not land on the guest's directories
  const at = (guestPath: string) => join(root, guestPath);
  const put = async (guestPath: string, content: string | Buffer) => {
    await mkdir(join(at(guestPath), ".."), { recursive: true });
    await writeFile(at(guestPath), content);
  };
  try {
    // This and the prompt are bot-bottle's files, in a folder of yours: whatever stands
    // there instead is refused, not waited on (a FIFO would hold the start, Ctrl-C and all).
    await put(AGENT.caFile, await readRegularFile(plan.bundle.caCert));
    await put(`${AGENT.home}/.gitconfig`, gitconfigText(plan, urls));
    if (plan.vm.kind === "smolvm") {
      // Its folder is new in the guest and takes the mode it has here, whatever the umask:
      // the agent reads the file as itself, and must not write either.
      await put(AGENT.bundleEnv, bundleEnvScript(urls));
      await chmod(join(at(AGENT.bundleEnv), ".."), 0o755);
      await chmod(at(AGENT.bundleEnv), 0o644);
    }
    if (plan.files.prompt) {
      const prompt = await readRegularFile(plan.files.prompt);
      await put(AGENT.promptFile, prompt);
      if (plan.agent.provider === "codex") await put(`${AGENT.home}/.codex/AGENTS.md`, prompt);
    }
    for (const s of plan.agent.skills) {
      // A link stays the link it is: cp would otherwise rewrite a relative one into the
      // host's absolute path, leading nowhere in the bottle and telling it the host's layout.
      await cp(s.path, at(`${skillsDir(plan)}/${s.name}`), { recursive: true, verbatimSymlinks: true });
    }
    const mcp = urls.supervise;
    if (mcp && plan.agent.provider === "codex") {
      await put(`${AGENT.home}/.codex/config.toml`, toToml({ mcp_servers: { supervise: { url: mcp } } }) + "\n");
    }
    if (mcp) await put(`${AGENT.home}/.bot-bottle/mcp.json`, JSON.stringify({ mcpServers: { supervise: { type: "http", url: mcp } } }, null, 2) + "\n");
    for (const [guestPath, content] of Object.entries(opts.agentFiles ?? {})) await put(guestPath, content);
    const scrubbed = opts.cwd ? await stageCheckout(opts.cwd, at(AGENT.workdir), { checkout: at(AGENT.checkoutTar), gitDir: at(AGENT.gitDirTar) }) : [];
    const tarFile = `${root}.tar`;
    await packFolder({ from: root, tarFile, names: ["."], leaveOut: [], what: "Cannot pack the provisioning files" });
    await rm(root, { recursive: true, force: true });
    return { tarFile, scrubbed, cleanup: () => rm(parent, { recursive: true, force: true }) };
  } catch (e) {
    await rm(parent, { recursive: true, force: true });
    throw e;
  }
}
