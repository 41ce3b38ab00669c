// Parsing one bottle file into a declaration: every field is either what the file says
// or undefined (not declared), which is what `extends` merging needs to tell "inherit"
// from "replace with empty".
import { dirname, isAbsolute, join } from "node:path";
import { homedir } from "node:os";
import type { AuthScheme } from "../plan/schema.ts";
import { DETECTORS, type Detector } from "../sidecar-config.ts";
import { FieldReader, HOST_PATTERN } from "./fields.ts";
import type { Frontmatter } from "./frontmatter.ts";

const BOTTLE_KEYS = [
  "extends",
  "description",
  "env",
  "git",
  "git_user",
  "egress",
  "allow_hosts",
  "sensitive_env",
  "supervise",
  "dlp_disable",
  "limits",
] as const;

const AUTH_SCHEMES = ["bearer", "x-api-key", "basic", "header"] as const satisfies readonly AuthScheme[];

export interface RouteDecl {
  host: string;
  auth: AuthScheme;
  header: string | null;
  tokenEnv: string;
  agentEnv: string;
}
interface UpstreamDecl {
  host: string;
  url: string;
  identityFile: string | null;
  /** Public host keys ("ssh-ed25519 AAAA..."): set, git-gate accepts only these; null, it
   * trusts the first key it sees and pins it. */
  hostKeys: string[] | null;
}
export interface GitDecl {
  upstreams: UpstreamDecl[];
  repos: string[];
  push: { allowedRefs: string[]; protectedBranches: string[]; protectedPaths: string[]; dlp: boolean };
}
export interface GitUserDecl {
  name: string | null;
  email: string | null;
}

/** Resource ceilings; null: not declared here (the backend's default, or the parent's). */
export interface LimitsDecl {
  memoryMiB: number | null;
  cpus: number | null;
}

export interface BottleDecl {
  name: string;
  file: string;
  extends?: string;
  description?: string;
  env?: Record<string, string>;
  git?: GitDecl | null;
  gitUser?: GitUserDecl;
  egress?: RouteDecl[];
  allowHosts?: AllowHostDecl[];
  sensitiveEnv?: string[];
  supervise?: boolean;
  dlpDisable?: Detector[];
  limits?: LimitsDecl;
  /** Which file declared each field (after merging), so cross-field errors name it. */
  origin: Partial<Record<string, string>>;
}

export function parseBottle(name: string, fm: Frontmatter): BottleDecl {
  const r = new FieldReader(fm.file);
  const d = fm.data;
  r.checkKeys(d, BOTTLE_KEYS);
  const decl: BottleDecl = { name, file: fm.file, origin: Object.fromEntries(Object.keys(d).map((k) => [k, fm.file])) };
  if ("extends" in d) {
    const v = d.extends;
    if (typeof v !== "string") r.fail("extends", `must be the name of one bottle (a string), got ${v === null ? "nothing" : Array.isArray(v) ? "a list" : typeof v}`, "MANIFEST_EXTENDS");
    decl.extends = r.nonEmptyString("extends", v);
  }
  if ("description" in d) decl.description = r.line("description", d.description);
  if ("env" in d) decl.env = r.envMap("env", d.env ?? {});
  if ("git" in d) decl.git = d.git === null ? null : parseGit(r, d.git, fm.file);
  if ("git_user" in d) decl.gitUser = parseGitUser(r, d.git_user);
  if ("egress" in d) decl.egress = r.list("egress", d.egress ?? []).map((v, i) => parseRoute(r, `egress[${i}]`, v));
  if ("allow_hosts" in d) {
    decl.allowHosts = r.list("allow_hosts", d.allow_hosts ?? []).map((v, i) => parseAllowHost(r, `allow_hosts[${i}]`, v));
    // Host names are case-insensitive: docs.Python.org twice would be one host, shown twice.
    decl.allowHosts.forEach((h, i) => {
      const first = decl.allowHosts!.findIndex((o) => o.host === h.host);
      if (first < i) r.fail(`allow_hosts[${i}]`, `"${h.host}" is listed already (allow_hosts[${first}]); give its ports and tls_passthrough in one entry`);
    });
  }
  if ("sensitive_env" in d) decl.sensitiveEnv = r.stringList("sensitive_env", d.sensitive_env ?? []).map((v, i) => envName(r, `sensitive_env[${i}]`, v));
  if ("supervise" in d) decl.supervise = r.boolean("supervise", d.supervise);
  if ("dlp_disable" in d) {
    decl.dlpDisable = r.list("dlp_disable", d.dlp_disable ?? []).map((v, i) => r.oneOf(`dlp_disable[${i}]`, v, DETECTORS, "detector"));
  }
  if ("limits" in d) decl.limits = parseLimits(r, d.limits);
  return decl;
}

/** Below this node and the agent CLI do not start, and the failure would read as a crash. */
const MIN_MEMORY_MIB = 256;

function parseLimits(r: FieldReader, v: unknown): LimitsDecl {
  const o = r.object("limits", v ?? {});
  r.checkKeys(o, ["memory", "cpus"], "limits");
  const memoryMiB = "memory" in o ? parseMemory(r, "limits.memory", o.memory) : null;
  const cpus = "cpus" in o ? parseCpus(r, "limits.cpus", o.cpus) : null;
  if (memoryMiB === null && cpus === null) r.fail("limits", "declares neither memory nor cpus: set at least one, or remove the block");
  return { memoryMiB, cpus };
}

/** "8g", "1.5GiB", "512m", "768MB": binary units either way, as docker reads them. */
function parseMemory(r: FieldReader, field: string, v: unknown): number {
  const s = typeof v === "string" ? v.trim() : "";
  const m = /^(\d+(?:\.\d+)?)\s*([mg])(?:i?b)?$/i.exec(s);
  if (!m) r.fail(field, `must be a size in m or g (MiB or GiB: "512m", "8g", "1.5GiB"), got ${JSON.stringify(v)}`);
  const mib = Math.round(Number(m[1]) * (m[2]!.toLowerCase() === "g" ? 1024 : 1));
  if (mib < MIN_MEMORY_MIB) r.fail(field, `${JSON.stringify(v)} is below ${MIN_MEMORY_MIB}m, too little for node and the agent CLI to start`);
  return mib;
}

function parseCpus(r: FieldReader, field: string, v: unknown): number {
  // docker counts CPUs in hundredths; a finer figure would be rounded without saying so.
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0.01 || Math.round(v * 100) !== v * 100 || v > 256) {
    r.fail(field, `must be a number of CPUs from 0.01 to 256 (fractions in hundredths, like 2 or 1.5), got ${JSON.stringify(v)}`);
  }
  return v;
}

function host(r: FieldReader, field: string, v: unknown, allowWildcard: boolean): string {
  const h = r.nonEmptyString(field, v).toLowerCase();
  const withPort = /^(.+):(\d+)$/.exec(h);
  if (withPort && allowWildcard && HOST_PATTERN.test(withPort[1]!)) {
    r.fail(field, `"${h}" is not a valid host name: give the port apart ({host: ${withPort[1]}, ports: [${withPort[2]}]})`);
  }
  if (!HOST_PATTERN.test(h) || (!allowWildcard && h.startsWith("*."))) {
    r.fail(field, `"${h}" is not a valid host name${allowWildcard ? ' (use "example.com" or "*.example.com")' : ""}`);
  }
  return h;
}

function parseRoute(r: FieldReader, field: string, v: unknown): RouteDecl {
  const o = r.object(field, v);
  r.checkKeys(o, ["host", "auth", "token_env", "header", "agent_env"], field);
  if (!("host" in o)) r.fail(`${field}.host`, "is required");
  if (!("auth" in o)) r.fail(`${field}.auth`, "is required (one of bearer, x-api-key, basic, header)");
  if (!("token_env" in o)) r.fail(`${field}.token_env`, "is required: the host env var that holds the real credential");
  const auth = r.oneOf(`${field}.auth`, o.auth, AUTH_SCHEMES, "auth scheme");
  const header = "header" in o ? r.nonEmptyString(`${field}.header`, o.header) : null;
  if (auth === "header" && header === null) r.fail(`${field}.header`, 'is required when auth is "header" (the header name to inject)');
  if (auth !== "header" && header !== null) r.fail(`${field}.header`, `only applies when auth is "header" (auth is "${auth}")`);
  const tokenEnv = envName(r, `${field}.token_env`, o.token_env);
  const agentEnv = "agent_env" in o ? envName(r, `${field}.agent_env`, o.agent_env) : tokenEnv;
  // token_env is read on the host, where any name will do; it names the agent's
  // placeholder too unless agent_env gives another.
  if ("agent_env" in o) r.notReserved(`${field}.agent_env`, agentEnv, "give the placeholder another name");
  else r.notReserved(`${field}.token_env`, tokenEnv, "the agent's placeholder takes this name unless agent_env gives another: set agent_env");
  return { host: host(r, `${field}.host`, o.host, false), auth, header, tokenEnv, agentEnv };
}

function envName(r: FieldReader, field: string, v: unknown): string {
  const s = r.nonEmptyString(field, v);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) r.fail(field, `"${s}" is not a valid environment variable name`);
  return s;
}

/** An allowed host; `ports` null means the web's own, 80 and 443. */
export interface AllowHostDecl {
  host: string;
  tlsPassthrough: boolean;
  ports: number[] | null;
}

function parseAllowHost(r: FieldReader, field: string, v: unknown): AllowHostDecl {
  if (typeof v === "string") return { host: host(r, field, v, true), tlsPassthrough: false, ports: null };
  const o = r.object(field, v);
  r.checkKeys(o, ["host", "tls_passthrough", "ports"], field);
  if (!("host" in o)) r.fail(`${field}.host`, "is required");
  return {
    host: host(r, `${field}.host`, o.host, true),
    tlsPassthrough: "tls_passthrough" in o ? r.boolean(`${field}.tls_passthrough`, o.tls_passthrough) : false,
    ports: "ports" in o ? parsePorts(r, `${field}.ports`, o.ports) : null,
  };
}

function parsePorts(r: FieldReader, field: string, v: unknown): number[] {
  const list = r.list(field, v);
  if (list.length === 0) r.fail(field, "is empty: list the ports this host may be reached on, or leave ports out for 80 and 443");
  const ports = list.map((p, i) => {
    if (typeof p !== "number" || !Number.isInteger(p) || p < 1 || p > 65535) r.fail(`${field}[${i}]`, `must be a port number from 1 to 65535, got ${JSON.stringify(p)}`);
    return p;
  });
  return [...new Set(ports)].sort((a, b) => a - b);
}

function parseGitUser(r: FieldReader, v: unknown): GitUserDecl {
  const o = r.object("git_user", v ?? {});
  r.checkKeys(o, ["name", "email"], "git_user");
  const name = "name" in o && o.name !== null ? r.line("git_user.name", o.name) : "";
  const email = "email" in o && o.email !== null ? r.line("git_user.email", o.email) : "";
  if (name === "" && email === "") r.fail("git_user", "declares neither name nor email: set at least one, or remove the block");
  return { name: name || null, email: email || null };
}

// A public key as ssh-keyscan and known_hosts write it, after the host name: type, base64,
// optional comment.
const HOST_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$/;

/** The transports git-gate fetches and pushes over, and scp-like user@host:path. */
const GIT_URL = /^(?:(?:ssh|https?|git|file):\/\/.|[^/:@\s]+@[^/:\s]+:)/i;

/** `host_key`: one key or a list (a host serving several key types), ssh upstreams only. */
function parseHostKeys(r: FieldReader, field: string, v: unknown, url: string): string[] {
  if (!/^ssh:\/\/|^[^/:]+@[^/:]+:/.test(url)) r.fail(field, `only applies to an ssh upstream, and url is ${JSON.stringify(url)}`);
  const keys = typeof v === "string" ? [v] : r.stringList(field, v);
  if (keys.length === 0) r.fail(field, "is empty: give the upstream's public host key (ssh-keyscan HOST), or remove the field to trust the first key seen");
  return keys.map((k, i) => {
    const key = k.trim();
    if (!HOST_KEY.test(key)) {
      const at = typeof v === "string" ? field : `${field}[${i}]`;
      r.fail(at, `${JSON.stringify(key.slice(0, 40))} is not a public host key: expected "<type> <base64>" as ssh-keyscan prints it after the host name (e.g. "ssh-ed25519 AAAAC3Nza...")`);
    }
    return key;
  });
}

function parseGit(r: FieldReader, v: unknown, file: string): GitDecl {
  const o = r.object("git", v);
  r.checkKeys(o, ["upstreams", "repos", "push"], "git");
  const upstreamsObj = r.object("git.upstreams", o.upstreams ?? {});
  const upstreams: UpstreamDecl[] = Object.entries(upstreamsObj).map(([h, u]) => {
    const field = `git.upstreams.${h}`;
    host(r, field, h, false);
    const uo = r.object(field, u);
    r.checkKeys(uo, ["url", "identity_file", "host_key"], field);
    if (!("url" in uo)) r.fail(`${field}.url`, "is required: where git-gate fetches from and pushes to (e.g. ssh://git@github.com)");
    // The scheme in lower case: bb-bundle and git-gate tell file:// upstreams by it.
    const url = r.oneLine(`${field}.url`, r.nonEmptyString(`${field}.url`, uo.url)).replace(/\/+$/, "").replace(/^[a-z][a-z0-9+.-]*:\/\//i, (scheme) => scheme.toLowerCase());
    if (!GIT_URL.test(url)) {
      r.fail(`${field}.url`, `${JSON.stringify(url)} is not a URL git-gate can fetch from: use ssh://, https://, http://, git:// or file://, or user@host:path`);
    }
    if (/\s/.test(url)) r.fail(`${field}.url`, `${JSON.stringify(url)} holds a space: a URL has none (write a space in a path as %20)`);
    const identityFile = "identity_file" in uo ? expandPath(r.nonEmptyString(`${field}.identity_file`, uo.identity_file), file) : null;
    const hostKeys = "host_key" in uo ? parseHostKeys(r, `${field}.host_key`, uo.host_key, url) : null;
    return { host: h.toLowerCase(), url, identityFile, hostKeys };
  });
  const repos = r.stringList("git.repos", o.repos ?? []).map((repo, i) => {
    const clean = repo.replace(/\.git$/, "").replace(/\/+$/, "");
    const parts = clean.split("/");
    if (parts.length < 3 || parts.some((p) => p === "" || p === "." || p === "..")) {
      r.fail(`git.repos[${i}]`, `"${repo}" must look like <host>/<owner>/<repo>`);
    }
    if (!upstreams.some((u) => u.host === parts[0]!.toLowerCase())) {
      r.fail(`git.repos[${i}]`, `host "${parts[0]}" has no entry under git.upstreams (declared: ${upstreams.map((u) => u.host).join(", ") || "none"})`);
    }
    return clean;
  });
  const p = r.object("git.push", o.push ?? {});
  r.checkKeys(p, ["allowed_refs", "protected_branches", "protected_paths", "dlp"], "git.push");
  return {
    upstreams,
    repos,
    push: {
      allowedRefs: "allowed_refs" in p ? r.stringList("git.push.allowed_refs", p.allowed_refs) : [],
      protectedBranches: "protected_branches" in p ? r.stringList("git.push.protected_branches", p.protected_branches) : ["main", "master"],
      protectedPaths: "protected_paths" in p ? r.stringList("git.push.protected_paths", p.protected_paths) : [],
      dlp: "dlp" in p ? r.boolean("git.push.dlp", p.dlp) : true,
    },
  };
}

/** `~/x` -> home, relative -> relative to the declaring file's folder. */
function expandPath(p: string, file: string): string {
  if (p === "~" || p.startsWith("~/")) return join(homedir(), p.slice(1));
  return isAbsolute(p) ? p : join(dirname(file), p);
}
