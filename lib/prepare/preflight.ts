// The preflight summary people read before saying y: what will run, with what access.
// Env values that look secret (by name, or by what the firewall's detectors find in them)
// and auth placeholders are never shown.
import { PROVIDER_HOSTS } from "../credentials.ts";
import type { Plan } from "../plan/schema.ts";
import { createScanner } from "../dlp/mod.ts";
import { printable } from "../printable.ts";
import { redactCredentials } from "../proc.ts";
import { publicSuffixUnderWildcard } from "../public-suffix.ts";
import { describeLimits } from "../vm/limits.ts";
import { routeTokensIn, sensitiveSlots } from "./files.ts";

const SECRET_NAME = /(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|PRIVATE|COOKIE|SESSION)/i;

function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

let scanner: ReturnType<typeof createScanner> | undefined;

/** A value to show as <hidden> whatever its name: a known credential format or a random
 * token (the firewall's own detectors), or a URL with a password in it. */
function looksSecret(value: string): boolean {
  scanner ??= createScanner();
  return /[a-z][a-z0-9+.-]*:\/\/[^/@\s:]*:[^/@\s]*@/i.test(value) || scanner.scan(value) !== null;
}

function envLine(plan: Plan): string {
  const placeholders = new Set(plan.bottle.egress.map((r) => r.agentEnv));
  const env = { ...plan.bottle.env, ...plan.agent.env };
  const parts = Object.keys(env)
    .sort()
    .map((k) => (placeholders.has(k) ? `${k}=<placeholder>` : isSecretName(k) || looksSecret(env[k]!) ? `${k}=<hidden>` : `${k}=${env[k]}`));
  for (const k of [...placeholders].sort()) if (!(k in env)) parts.push(`${k}=<placeholder>`);
  return parts.length ? parts.join(", ") : "(none)";
}

interface PreflightExtras {
  /** Hosts the operator approved for this bottle before (approved-hosts.json), which a
   * rebuild puts back into the policy: the allow line shows all the agent can reach. */
  approved?: readonly { host: string; tlsPassthrough: boolean }[];
  /** The git dir whose history the cwd copy takes when the checkout's .git is a file
   * naming one elsewhere (a worktree's repository, a --separate-git-dir clone's folder). */
  linkedGitDir?: string | null;
}

export function preflightText(plan: Plan, hostEnv: Record<string, string | undefined>, extras: PreflightExtras = {}): string {
  const approved = extras.approved ?? [];
  const { agent, bottle } = plan;
  const rows: [string, string][] = [];
  rows.push(["agent", `${agent.name} (${agent.provider})  ${agent.file}`]);
  rows.push(["bottle", `${bottle.chain.join(" <- ")}  ${bottle.file}`]);
  rows.push(["backend", plan.backend]);
  rows.push(["services", plan.services.join(", ")]);
  rows.push(["env", envLine(plan)]);
  rows.push(["skills", agent.skills.length ? agent.skills.map((s) => s.name).join(", ") : "(none)"]);
  rows.push(["prompt", agent.hasPrompt ? `${plan.files.prompt}` : "(none)"]);
  if (bottle.git && bottle.git.upstreams.length) {
    for (const u of bottle.git.upstreams) {
      const repos = bottle.git.repos.filter((r) => r.split("/")[0] === u.host);
      // A folder on this machine is mounted into git-gate read-write: no identity, no host key.
      const how = /^file:/i.test(u.url)
        ? "a folder on this machine, mounted into git-gate read-write: pushes land there"
        : `identity: ${u.identityFile ?? "none"}; host key: ${u.hostKeys ? `pinned, ${u.hostKeys.length}` : "trusted on first use"}`;
      rows.push(["git", `${u.host} -> ${shownUrl(u.url)} (${how}); repos: ${repos.join(", ") || "(none)"}`]);
    }
    const p = bottle.git.push;
    rows.push(["push", `refs: ${p.allowedRefs.join(", ") || "any"}; protected branches: ${p.protectedBranches.join(", ") || "none"}; protected paths: ${p.protectedPaths.join(", ") || "none"}; dlp: ${p.dlp ? "on" : "off"}`]);
  } else {
    rows.push(["git", "(no upstreams)"]);
  }
  if (bottle.gitUser) rows.push(["git user", [bottle.gitUser.name, bottle.gitUser.email && `<${bottle.gitUser.email}>`].filter(Boolean).join(" ")]);
  if (bottle.egress.length) {
    for (const r of bottle.egress) {
      const forwarded = agent.forwardHostCredentials && (PROVIDER_HOSTS[agent.provider] as readonly string[]).includes(r.host);
      const set = forwarded ? "your host login, forwarded" : hostEnv[r.tokenEnv] ? "set on host" : "NOT SET on host: requests will fail until you set it and start the bottle again";
      rows.push(["egress", `${r.host}  ${r.auth}${r.header ? ` (${r.header})` : ""} from $${r.tokenEnv} (${set})`]);
    }
  } else {
    rows.push(["egress", "(no credential routes)"]);
  }
  const allow = bottle.allowHosts.map((h) => {
    const opens = publicSuffixUnderWildcard(h.host);
    const open = opens ? ` (EVERY site anyone registers under ${opens.text})` : "";
    return `${h.host}${h.ports ? `:${h.ports.join("/")}` : ""}${h.tlsPassthrough ? " (passthrough)" : ""}${open}`;
  });
  const listed = new Set([...bottle.allowHosts, ...bottle.egress].map((h) => h.host.toLowerCase()));
  for (const a of approved) {
    if (!listed.has(a.host.toLowerCase())) allow.push(`${a.host} (approved before${a.tlsPassthrough ? ", passthrough" : ""})`);
  }
  const none = bottle.egress.length ? "(only the egress hosts above)" : "(none)";
  rows.push(["allow", allow.length ? allow.join(", ") : none]);
  if (bottle.sensitiveEnv.length) {
    // An unset name protects nothing: most often a typo of the variable meant.
    const checked = sensitiveSlots(bottle).map((s) => s.name);
    const unset = checked.filter((n) => !hostEnv[n]);
    const tokens = routeTokensIn(bottle);
    const notes = [
      // The unset ones are named only when some are set: naming all would repeat the list.
      unset.length === 0 ? "" : unset.length === bottle.sensitiveEnv.length ? "NOT SET on host, so not checked" : `NOT SET on host, so not checked: ${unset.join(", ")}`,
      tokens.length ? `${tokens.join(", ")}: a route's token, held by egress alone and never by the agent, so no scanner is given it` : "",
    ].filter(Boolean);
    rows.push(["sensitive", `${bottle.sensitiveEnv.join(", ")}${notes.length ? ` (${notes.join("; ")})` : ""}`]);
  }
  if (bottle.dlpDisable.length) rows.push(["dlp off", bottle.dlpDisable.join(", ")]);
  rows.push(["supervise", bottle.supervise ? "on (the agent can ask you for more over MCP)" : "off"]);
  rows.push(["limits", describeLimits(bottle.limits)]);
  if (plan.cwd) {
    // The .git file is part of the checkout, whoever wrote it: the folder whose history it
    // brings along is shown, since a separate git dir has no link back to check.
    const history = extras.linkedGitDir ? `, with the git history of ${extras.linkedGitDir}, which its .git file names` : "";
    rows.push(["cwd", `${plan.cwd} (copied into the bottle${history})`]);
  }
  rows.push(["state", plan.files.dir]);
  const width = Math.max(...rows.map(([k]) => k.length));
  // Values come from the manifest (and its file names): a newline or ESC in one must not
  // add a row or hide the rows after it on the one screen read before y.
  return `bot-bottle preflight: ${printable(plan.slug)}\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${printable(v)}`).join("\n")}\n`;
}

/** An upstream URL with its userinfo masked (https://***@host/...), which for http(s) is
 * a credential; an ssh URL's bare user name is the login (git@), shown. */
function shownUrl(url: string): string {
  return /^ssh:\/\/[^/@:]*@/i.test(url) ? url : redactCredentials(url);
}
