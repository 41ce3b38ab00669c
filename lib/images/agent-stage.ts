// Staging the agent CLIs on the host for the agent image. npm cannot reach its registry from
// inside a container build here, and both CLIs ship their real program as a native binary
// in a per-platform package (an optional dependency a postinstall script would pick). So we
// `npm pack` exactly the packages the image's platform needs (linux-<arch>, whatever the
// host is), unpack them into a node_modules tree with no install script ever running, and
// add bin/ symlinks. The result is cached per versions and arch.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BbError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { run } from "../proc.ts";
import { AGENT_CLIS } from "./versions.ts";

export type AgentArch = "x64" | "arm64";

/** Bump when the staged layout changes, so old caches and images are not reused. */
export const STAGE_LAYOUT = 1;

interface StageOptions {
  arch: AgentArch;
  /** Parent of the agent-stage/ cache folder. */
  cacheRoot: string;
  logger: Logger;
}

interface StagedTools {
  dir: string;
  reused: boolean;
  bytes: number;
}

interface Packed {
  spec: string;
  integrity: string;
}

export function stageKey(arch: AgentArch): string {
  const { claude, codex } = AGENT_CLIS;
  return `linux-${arch}-l${STAGE_LAYOUT}-claude-code-${claude.version}-codex-${codex.version}`;
}

/** The staged tree for `arch`, reusing the cached one when the versions are unchanged. */
export async function stageAgentTools(opts: StageOptions): Promise<StagedTools> {
  const stageRoot = join(opts.cacheRoot, "agent-stage");
  const key = stageKey(opts.arch);
  const dir = join(stageRoot, key);
  if (existsSync(join(dir, "stage.json"))) {
    const bytes = (JSON.parse(readFileSync(join(dir, "stage.json"), "utf8")) as { bytes: number }).bytes;
    opts.logger.info(`reusing staged agent CLIs in ${dir}`);
    return { dir, reused: true, bytes };
  }
  mkdirSync(stageRoot, { recursive: true });
  const tmp = mkdtempSync(join(stageRoot, `.tmp-${key}-`));
  try {
    const started = Date.now();
    const packed = await stageInto(tmp, opts);
    const bytes = treeBytes(join(tmp, "node_modules"));
    writeFileSync(join(tmp, "stage.json"), JSON.stringify({ key, arch: opts.arch, clis: AGENT_CLIS, packed, bytes }, null, 2) + "\n");
    rmSync(join(tmp, "tgz"), { recursive: true, force: true });
    publish(tmp, dir);
    opts.logger.info(`staged agent CLIs (${(bytes / 1e6).toFixed(0)} MB) in ${((Date.now() - started) / 1000).toFixed(1)}s: ${dir}`);
    pruneOthers(stageRoot, key, opts.arch);
    return { dir, reused: false, bytes };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function stageInto(tmp: string, opts: StageOptions): Promise<Packed[]> {
  const nm = join(tmp, "node_modules");
  const tgz = join(tmp, "tgz");
  mkdirSync(tgz);
  const packed: Packed[] = [];
  const add = async (spec: string, into: string) => {
    opts.logger.step(`fetching ${spec} from npm`);
    const p = await npmPack(spec, tgz);
    await untar(join(tgz, p.filename), join(nm, into));
    rmSync(join(tgz, p.filename));
    packed.push({ spec, integrity: p.integrity });
  };
  const { claude, codex } = AGENT_CLIS;

  // claude: the native package alone is the whole program.
  const claudeNative = await nativeDep(claude, opts.arch);
  await add(claudeNative.spec, claudeNative.dir);

  // codex: its node launcher finds the native package beside it, as npm lays them out.
  const codexNative = await nativeDep(codex, opts.arch);
  await add(`${codex.package}@${codex.version}`, codex.package);
  await add(codexNative.spec, codexNative.dir);

  mkdirSync(join(tmp, "bin"));
  link(tmp, "claude", `${claudeNative.dir}/claude`);
  link(tmp, "codex", `${codex.package}/bin/codex.js`);
  return packed;
}

/** The npm spec and node_modules folder of a CLI's linux-<arch> optional dependency. */
async function nativeDep(cli: { package: string; version: string }, arch: AgentArch): Promise<{ spec: string; dir: string }> {
  const dep = `${cli.package}-linux-${arch}`;
  const spec = `${cli.package}@${cli.version}`;
  const r = await run(["npm", "view", "--json", spec, "optionalDependencies"], {
    what: `Cannot read ${spec} from the npm registry`,
    errorCode: "NOT_FOUND",
    timeoutMs: 120_000,
  });
  const deps = (r.stdout.trim() ? JSON.parse(r.stdout) : {}) as Record<string, string>;
  const range = deps[dep];
  if (!range) throw new BbError("NOT_FOUND", `Cannot stage ${spec}: it names no ${dep} package (is linux-${arch} supported?)`);
  // "npm:@openai/codex@0.169.0-linux-x64" is an alias; npm would still install it as `dep`.
  return { spec: range.startsWith("npm:") ? range.slice(4) : `${dep}@${range}`, dir: dep };
}

async function npmPack(spec: string, dest: string): Promise<{ filename: string; integrity: string }> {
  const r = await run(["npm", "pack", "--json", "--pack-destination", dest, spec], {
    cwd: dest,
    what: `Cannot download ${spec} from the npm registry`,
    errorCode: "NOT_FOUND",
    timeoutMs: 15 * 60_000,
  });
  const out = JSON.parse(r.stdout.slice(r.stdout.indexOf("["))) as { filename: string; integrity: string }[];
  const first = out[0];
  if (!first) throw new BbError("NOT_FOUND", `npm pack ${spec} produced no tarball`);
  return first;
}

async function untar(file: string, dest: string): Promise<void> {
  mkdirSync(dest, { recursive: true });
  await run(["tar", "-xzf", file, "-C", dest, "--strip-components=1", "--no-same-owner"], { what: `Cannot unpack ${file}` });
}

function link(stage: string, name: string, target: string): void {
  const full = join(stage, "node_modules", target);
  if (!existsSync(full) || (statSync(full).mode & 0o111) === 0) {
    throw new BbError("NOT_FOUND", `Cannot stage ${name}: ${target} is missing or not executable in the unpacked package`);
  }
  symlinkSync(`../node_modules/${target}`, join(stage, "bin", name));
}

// A concurrent stager may have won the rename; its tree is as good as ours.
function publish(tmp: string, dir: string): void {
  try {
    renameSync(tmp, dir);
  } catch (e) {
    if (!existsSync(join(dir, "stage.json"))) throw e;
  }
}

/** Remove complete stages for older versions of the same arch (each is hundreds of MB). */
function pruneOthers(stageRoot: string, key: string, arch: AgentArch): void {
  for (const name of readdirSync(stageRoot)) {
    if (name !== key && name.startsWith(`linux-${arch}-`) && existsSync(join(stageRoot, name, "stage.json"))) {
      rmSync(join(stageRoot, name), { recursive: true, force: true });
    }
  }
}

function treeBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += treeBytes(p);
    else total += lstatSync(p).size;
  }
  return total;
}
