import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { mkdir, readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import process from "node:process";
import { tempDir, writeTree } from "../../tests/support/tmp.ts";
import { REPO, runTool } from "../../tests/support/tools.ts";
import { bundleSecrets } from "../../lib/bundle/secrets.ts";
import { validatePlan } from "../../lib/plan/io.ts";
import { ANY_EXIT, run, start } from "../../lib/proc.ts";
import { recordApproval } from "../../lib/supervise/approvals.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { fifo } from "../../tests/support/fifo.ts";

const BUNDLE = join(REPO, "dist/bb-prepare.js");
const noBundle = !existsSync(BUNDLE) && "dist/bb-prepare.js not built (npm run build); `npm test` builds it first";

test("bb-prepare researcher: stdout is exactly one valid plan, stderr has the preflight", async (t) => {
  const state = await tempDir(t);
  const r = await runTool("bb-prepare", ["researcher", "--state-dir", state], { env: { ANTHROPIC_API_KEY: "sk-ant-api03-realsecretvalue" } });
  assert.equal(r.code, 0, r.stderr);
  const plan = validatePlan(r.json());
  assert.match(plan.slug, /^researcher-[a-z0-9]{4}$/);
  assert.equal(plan.backend, "docker");
  assert.deepEqual(plan.services, ["firewall", "egress", "supervise"]);
  assert.match(r.stderr, /bot-bottle preflight: researcher-/);
  assert.match(r.stderr, /agent\s+researcher \(claude\)/);
  assert.match(r.stderr, /ANTHROPIC_API_KEY=<placeholder>/);
  assert.match(r.stderr, /api\.anthropic\.com\s+x-api-key from \$ANTHROPIC_API_KEY \(set on host\)/);
  assert.ok(!r.stderr.includes("realsecretvalue") && !r.stdout.includes("realsecretvalue"), "the host secret leaked");
  // The plan a script reads with jq.
  const jq = await run(["jq", "-r", ".slug"], { input: r.stdout });
  assert.equal(jq.stdout.trim(), plan.slug);
});

test("bb-prepare writes the per-bottle files with private modes", async (t) => {
  const state = await tempDir(t);
  const r = await runTool("bb-prepare", ["researcher", "--state-dir", state]);
  assert.equal(r.code, 0, r.stderr);
  const plan = validatePlan(r.json());
  assert.equal(plan.files.dir, join(state, "bottles", plan.slug));
  const policy = JSON.parse(await readFile(plan.files.firewallPolicy, "utf8"));
  assert.deepEqual(
    policy.hosts.find((h: { host: string }) => h.host === "api.anthropic.com"),
    { host: "api.anthropic.com", tlsPassthrough: false, routed: true, replacedHeaders: ["authorization", "x-api-key"] },
  );
  assert.deepEqual(policy.dlp.sensitive, []);
  const routes = JSON.parse(await readFile(plan.files.egressRoutes!, "utf8"));
  assert.deepEqual(routes.routes, [{ host: "api.anthropic.com", auth: "x-api-key", header: null, slot: "EGRESS_TOKEN_0" }]);
  assert.ok(existsSync(plan.files.superviseQueue!));
  assert.match(await readFile(plan.files.prompt!, "utf8"), /request_host_access/);
  for (const f of [plan.files.prompt!, plan.files.plan]) assert.equal(statSync(f).mode & 0o777, 0o600, f);
  // What the firewall, egress and supervise use is open to the group their uids share in
  // the bundle; the bottle's folder around it is yours alone.
  for (const f of [plan.files.firewallPolicy, plan.files.egressRoutes!]) {
    assert.equal(statSync(f).mode & 0o777, 0o640, f);
    assert.equal(statSync(dirname(f)).mode & 0o777, 0o750, dirname(f));
  }
  assert.equal(statSync(plan.files.superviseQueue!).mode & 0o777, 0o770);
  assert.equal(statSync(plan.files.dir).mode & 0o777, 0o700);
  assert.deepEqual(validatePlan(JSON.parse(await readFile(plan.files.plan, "utf8"))), plan);
});

test("bb-prepare with git writes git-gate config and executable hooks", async (t) => {
  const dir = await writeTree(await tempDir(t), {
    "agents/g.md": "---\nprovider: shell\nbottle: g\n---\n",
    "g.md": "---\ngit:\n  upstreams:\n    git.test: {url: 'git://127.0.0.1:1'}\n  repos: [git.test/o/r]\n  push: {allowed_refs: ['refs/heads/bot/*']}\n---\n",
  });
  const state = await tempDir(t);
  const r = await runTool("bb-prepare", ["g", "--manifest-dir", dir, "--state-dir", state]);
  assert.equal(r.code, 0, r.stderr);
  const plan = validatePlan(r.json());
  assert.ok(plan.services.includes("git-gate"));
  const cfg = JSON.parse(await readFile(plan.files.gitGateConfig!, "utf8"));
  assert.deepEqual(cfg.repos, ["git.test/o/r"]);
  assert.deepEqual(cfg.push.allowedRefs, ["refs/heads/bot/*"]);
  const hooks = await readdir(plan.files.gitGateHooks!);
  assert.ok(hooks.length > 0);
  for (const h of hooks) assert.ok(statSync(join(plan.files.gitGateHooks!, h)).mode & 0o100, `${h} is not executable`);
});

test("bb-prepare on a broken manifest prints one line naming file and field, exits 4, leaves no state", async (t) => {
  const dir = await writeTree(await tempDir(t), { "agents/a.md": "---\nprovider: shell\nbottle: b\n---\n", "b.md": "---\negres: []\n---\n" });
  const state = await tempDir(t);
  const r = await runTool("bb-prepare", ["a", "--manifest-dir", dir, "--state-dir", state]);
  assert.equal(r.code, 4);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /b\.md: field "egres": unknown key \(did you mean "egress"\?\)/);
  assert.ok(!existsSync(join(state, "bottles")) || (await readdir(join(state, "bottles"))).length === 0);
});

test("sensitive_env: an unset name is flagged in the preflight; a name that cannot be a variable is refused", async (t) => {
  const dir = await writeTree(await tempDir(t), {
    "agents/a.md": "---\nprovider: shell\nbottle: b\n---\n",
    "b.md": "---\nsensitive_env: [BB_TEST_SET_VAR, BB_TEST_TYPO_VAR]\n---\n",
    "agents/c.md": "---\nprovider: shell\nbottle: c\n---\n",
    "c.md": "---\nsensitive_env: [\"lower case\"]\n---\n",
    "agents/d.md": "---\nprovider: shell\nbottle: d\n---\n",
    "d.md": "---\nsensitive_env: [BB_TEST_TYPO_VAR]\n---\n",
  });
  const state = await tempDir(t);
  const r = await runTool("bb-prepare", ["a", "--manifest-dir", dir, "--state-dir", state], { env: { BB_TEST_SET_VAR: "a-value-to-watch" } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /sensitive\s+BB_TEST_SET_VAR, BB_TEST_TYPO_VAR \(NOT SET on host, so not checked: BB_TEST_TYPO_VAR\)/);
  // All of them unset: the list is not said twice.
  const none = await runTool("bb-prepare", ["d", "--manifest-dir", dir, "--state-dir", state]);
  assert.equal(none.code, 0, none.stderr);
  assert.match(none.stderr, /^ {2}sensitive\s+BB_TEST_TYPO_VAR \(NOT SET on host, so not checked\)$/m);
  const bad = await runTool("bb-prepare", ["c", "--manifest-dir", dir, "--state-dir", state]);
  assert.equal(bad.code, 4);
  assert.match(bad.stderr, /c\.md: field "sensitive_env\[0\]": "lower case" is not a valid environment variable name/);
});

test("a route's own token listed in sensitive_env stays egress's alone: no BB_SENSITIVE slot for the firewall or git-gate, said in the preflight", async (t) => {
  const dir = await writeTree(await tempDir(t), {
    "agents/a.md": "---\nprovider: shell\nbottle: b\n---\n",
    "b.md": "---\negress:\n  - {host: api.example.test, auth: bearer, token_env: BB_TEST_ROUTE_TOKEN, agent_env: ROUTE_TOKEN}\nsensitive_env: [BB_TEST_ROUTE_TOKEN, BB_TEST_DB_PASSWORD]\n---\n",
  });
  const state = await tempDir(t);
  const hostEnv = { BB_TEST_ROUTE_TOKEN: "route-token-value-123", BB_TEST_DB_PASSWORD: "db-password-value-456" };
  const r = await runTool("bb-prepare", ["a", "--manifest-dir", dir, "--state-dir", state], { env: hostEnv });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /sensitive\s+BB_TEST_ROUTE_TOKEN, BB_TEST_DB_PASSWORD \(BB_TEST_ROUTE_TOKEN: a route's token, held by egress alone/);
  const plan = validatePlan(r.json());
  const policy = JSON.parse(await readFile(plan.files.firewallPolicy, "utf8"));
  assert.deepEqual(policy.dlp.sensitive, [{ name: "BB_TEST_DB_PASSWORD", slot: "BB_SENSITIVE_0" }]);
  const env = bundleSecrets(plan, hostEnv).env;
  assert.deepEqual(env, { EGRESS_TOKEN_0: "route-token-value-123", BB_SENSITIVE_0: "db-password-value-456" });
});

test("the preflight hides env values that look secret whatever their name: known formats, random tokens, URL passwords", async (t) => {
  const token = "ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6";
  const dir = await writeTree(await tempDir(t), {
    "agents/a.md": "---\nprovider: shell\nbottle: b\n---\n",
    "b.md": `---\nenv:\n  GH: ${token}\n  JAVA_OPTS: "-Dhttp.proxy=http://bob:hunter3pass@proxy.corp:8080"\n  DATABASE_URL: "postgres://app:hunter2pass@db.internal:5432/app"\n  RANDOM_ID: "q8Zt2LmX9vR4kW7pN3bY6cJ1hF5dS0gA"\n  PLAIN: hello-world\n  HOME_URL: "https://example.com/docs"\n---\n`,
  });
  const r = await runTool("bb-prepare", ["a", "--manifest-dir", dir, "--state-dir", await tempDir(t)]);
  assert.equal(r.code, 0, r.stderr);
  for (const secret of [token, "hunter2pass", "hunter3pass", "q8Zt2LmX9vR4kW7pN3bY6cJ1hF5dS0gA"]) assert.ok(!r.stderr.includes(secret), `the preflight shows ${secret}`);
  assert.match(r.stderr, /DATABASE_URL=<hidden>, GH=<hidden>, HOME_URL=https:\/\/example\.com\/docs, JAVA_OPTS=<hidden>, PLAIN=hello-world, RANDOM_ID=<hidden>/);
});

test("the preflight says a wildcard over a public suffix, or over a parent of some (*.amazonaws.com), opens every site under it, and leaves one organisation's subdomains plain", async (t) => {
  const dir = await writeTree(await tempDir(t), {
    "agents/a.md": "---\nprovider: shell\nbottle: b\n---\n",
    "b.md": "---\nallow_hosts: ['*.github.io', '*.myorg.github.io', {host: '*.co.uk', tls_passthrough: true}, '*.amazonaws.com', '*.mybucket.s3.amazonaws.com']\n---\n",
  });
  const r = await runTool("bb-prepare", ["a", "--manifest-dir", dir, "--state-dir", await tempDir(t)]);
  assert.equal(r.code, 0, r.stderr);
  const allow = /^\s+allow\s+(.*)$/m.exec(r.stderr)?.[1];
  assert.equal(
    allow,
    "*.github.io (EVERY site anyone registers under github.io), *.myorg.github.io, *.co.uk (passthrough) (EVERY site anyone registers under co.uk), " +
      "*.amazonaws.com (EVERY site anyone registers under the public suffixes beneath amazonaws.com (s3.amazonaws.com, elb.amazonaws.com, ...)), *.mybucket.s3.amazonaws.com",
  );
});

test("an identity_file that does not exist is a manifest error naming the field, and nothing is prepared", async (t) => {
  const dir = await writeTree(await tempDir(t), {
    "agents/a.md": "---\nprovider: shell\nbottle: b\n---\n",
    "b.md": "---\ngit:\n  upstreams:\n    a.test: {url: 'ssh://git@a.test', identity_file: /nonexistent/id_ed25519}\n  repos: [a.test/o/r]\n---\n",
  });
  const state = await tempDir(t);
  const r = await runTool("bb-prepare", ["a", "--manifest-dir", dir, "--state-dir", state]);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /b\.md: field "git\.upstreams\.a\.test\.identity_file": \/nonexistent\/id_ed25519 does not exist/);
  assert.ok(!existsSync(join(state, "bottles")) || (await readdir(join(state, "bottles"))).length === 0);
});

test("an identity_file that is a folder, not a key file, is a manifest error naming the field, and nothing is prepared", async (t) => {
  const dir = await writeTree(await tempDir(t), {
    "agents/a.md": "---\nprovider: shell\nbottle: b\n---\n",
    "b.md": "---\ngit:\n  upstreams:\n    a.test: {url: 'ssh://git@a.test', identity_file: keys}\n  repos: [a.test/o/r]\n---\n",
    "keys/id_ed25519": "not a real key\n",
  });
  const state = await tempDir(t);
  const r = await runTool("bb-prepare", ["a", "--manifest-dir", dir, "--state-dir", state]);
  assert.equal(r.code, 4, r.stderr);
  assert.ok(r.stderr.includes(`b.md: field "git.upstreams.a.test.identity_file": ${join(dir, "keys")} is a folder: name the private key file itself`), r.stderr);
  assert.equal(r.stdout, "");
  assert.ok(!existsSync(join(state, "bottles")) || (await readdir(join(state, "bottles"))).length === 0);
});

test("the preflight shows a manifest's file names with their newlines and ESCs escaped, so they add no row and hide none; an upstream's credential is masked", async (t) => {
  // A bottle's name is its file's: the one manifest text no field check sees.
  const bottle = "b\n  allow      (none)\n  supervise  off\x1b[8m";
  const dir = await writeTree(await tempDir(t), {
    "agents/a.md": `---\nprovider: shell\nbottle: "b\\n  allow      (none)\\n  supervise  off\\e[8m"\n---\n`,
    [`${bottle}.md`]: "---\nallow_hosts: [pastebin.com]\ngit:\n  upstreams:\n    a.test: {url: 'https://alice:hunter2pass@a.test'}\n  repos: [a.test/o/r]\n---\n",
  });
  const r = await runTool("bb-prepare", ["a", "--manifest-dir", dir, "--state-dir", await tempDir(t)]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stderr.includes("\x1b"), JSON.stringify(r.stderr));
  assert.deepEqual(r.stderr.split("\n").filter((l) => /^ {2}(allow|supervise) /.test(l)), ["  allow      pastebin.com", "  supervise  off"]);
  assert.match(r.stderr, /^ {2}bottle +b\\x0a {2}allow {6}\(none\)\\x0a {2}supervise {2}off\\x1b\[8m {2}/m);
  assert.match(r.stderr, /^ {2}git +a\.test -> https:\/\/\*\*\*@a\.test \(identity: none/m);
  assert.ok(!r.stderr.includes("hunter2pass"), "the upstream's password is in the preflight");
});

test("bb-prepare --json-errors adds a JSON error object with a stable code", async (t) => {
  const state = await tempDir(t);
  const r = await runTool("bb-prepare", ["nosuchagent", "--state-dir", state, "--json-errors"]);
  assert.equal(r.code, 4);
  const obj = JSON.parse(r.stderr.trim().split("\n").pop()!);
  assert.equal(obj.error.code, "MANIFEST_NOT_FOUND");
  assert.match(obj.error.message, /no agent named "nosuchagent"/);
});

test("bb-prepare usage errors exit 2 and name the flag", async (t) => {
  const state = await tempDir(t);
  const r = await runTool("bb-prepare", ["shell", "--backend", "qemu", "--state-dir", state]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--backend/);
  assert.match(r.stderr, /docker, smolmachines/);
  const missing = await runTool("bb-prepare", []);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing required argument 'agent'/);
  // A manifest dir that is not there, or is a file, is said as what it is.
  for (const [dir, what] of [[join(state, "nope"), "does not exist"], ["/etc/passwd", "is not a folder"]] as const) {
    const r = await runTool("bb-prepare", ["shell", "--state-dir", state, "--manifest-dir", dir]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, new RegExp(`^bb-prepare: error: Manifest dir ${dir} ${what} \\(pass --manifest-dir DIR`, "m"));
  }
});

test("bb-prepare --identity resumes with the same slug and createdAt", async (t) => {
  const state = await tempDir(t);
  const first = validatePlan((await runTool("bb-prepare", ["shell", "--state-dir", state])).json());
  const again = await runTool("bb-prepare", ["shell", "--state-dir", state, "--identity", first.slug]);
  assert.equal(again.code, 0, again.stderr);
  const second = validatePlan(again.json());
  assert.equal(second.slug, first.slug);
  assert.equal(second.createdAt, first.createdAt);
  const wrong = await runTool("bb-prepare", ["researcher", "--state-dir", state, "--identity", first.slug]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /belongs to agent "shell"/);
  const bad = await runTool("bb-prepare", ["shell", "--state-dir", state, "--identity", "Not A Slug"]);
  assert.equal(bad.code, 2);
  const lone = await runTool("bb-prepare", ["shell", "--state-dir", state, "--rebuild"]);
  assert.equal(lone.code, 2);
  assert.match(lone.stderr, /--rebuild replaces a bottle's containers under its slug: it needs --identity SLUG/);
});

test("bb-prepare --identity keeps the hosts bb-supervise recorded approving (the policy is rewritten from the manifest), never one only the queue calls approved", async (t) => {
  const state = await tempDir(t);
  const first = validatePlan((await runTool("bb-prepare", ["shell", "--state-dir", state])).json());
  const queue = first.files.superviseQueue!;
  const request = (id: string, host: string, status: string, tlsPassthrough = false) => ({
    version: 1, id, kind: "host", host, tlsPassthrough, reason: "r", question: null, status, answer: null, createdAt: first.createdAt, decidedAt: null,
  });
  await writeTree(queue, {
    "a.json": JSON.stringify(request("a", "docs.example.test", "approved")),
    "b.json": JSON.stringify(request("b", "denied.example.test", "denied")),
    "c.json": JSON.stringify(request("c", "pending.example.test", "pending")),
    // Written from inside the bundle (the queue is mounted there): decided by nobody.
    "0badc0de.json": JSON.stringify(request("0badc0de", "exfil.attacker.example", "approved", true)),
  });
  await recordApproval(first.files.dir, { host: "docs.example.test", tlsPassthrough: false, request: "a", approvedAt: first.createdAt });
  const again = await runTool("bb-prepare", ["shell", "--state-dir", state, "--identity", first.slug]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /kept the host\(s\) you approved for this bottle before: docs\.example\.test\n/);
  // The y/N summary shows it among what the agent can reach.
  assert.match(again.stderr, /^ {2}allow +docs\.example\.test \(approved before\)$/m);
  assert.match(again.stderr, /^bb-prepare: warning: the supervise queue calls exfil\.attacker\.example approved, but bb-supervise never recorded approving them \(approved-hosts\.json\); left out/m);
  const hosts = JSON.parse(await readFile(first.files.firewallPolicy, "utf8")).hosts.map((h: { host: string }) => h.host);
  assert.ok(hosts.includes("docs.example.test"), hosts.join(" "));
  for (const h of ["denied.example.test", "pending.example.test", "exfil.attacker.example"]) assert.ok(!hosts.includes(h), `${h} in ${hosts.join(" ")}`);
});

test("bb-prepare --identity over an approvals record it cannot read fails with the bottle's files as they were", async (t) => {
  const state = await tempDir(t);
  const first = validatePlan((await runTool("bb-prepare", ["shell", "--state-dir", state])).json());
  await writeFile(join(first.files.dir, "approved-hosts.json"), "{ not json");
  const snapshot = async () => Promise.all([first.files.firewallPolicy, first.files.plan].map(async (f) => [await readFile(f, "utf8"), statSync(f).mtimeMs]));
  const before = await snapshot();
  const queueMode = statSync(first.files.superviseQueue!).mode;
  const again = await runTool("bb-prepare", ["shell", "--state-dir", state, "--identity", first.slug]);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /approved-hosts\.json/);
  assert.deepEqual(await snapshot(), before, "the policy or plan was rewritten");
  assert.equal(statSync(first.files.superviseQueue!).mode, queueMode);
});

test("bb-prepare --cwd and --backend land in the plan; a missing --cwd is a usage error", async (t) => {
  const state = await tempDir(t);
  const r = await runTool("bb-prepare", ["shell", "--state-dir", state, "--cwd", REPO, "--backend", "smolmachines"]);
  const plan = validatePlan(r.json());
  assert.equal(plan.cwd, REPO);
  assert.equal(plan.backend, "smolmachines");
  const bad = await runTool("bb-prepare", ["shell", "--state-dir", state, "--cwd", "/nonexistent/dir"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--cwd \/nonexistent\/dir: not a directory/);
  // A worktree whose repository is gone: refused before anything is made, naming the link.
  const stale = await writeTree(await tempDir(t), { ".git": "gitdir: /nonexistent/repo/.git/worktrees/x\n" });
  const before = await readdir(state);
  const broken = await runTool("bb-prepare", ["shell", "--state-dir", state, "--cwd", stale]);
  assert.equal(broken.code, 2);
  assert.match(broken.stderr, /\.git points at \/nonexistent\/repo\/\.git\/worktrees\/x, which is not a git directory/);
  assert.deepEqual(await readdir(state), before, "a refused prepare left something in the state dir");
});

test("bb-prepare's preflight names the git dir whose history a cwd's .git file brings along; a plain checkout's row names none", async (t) => {
  const [state, dir] = [await tempDir(t), await tempDir(t)];
  const git = (args: string[]) => run(["git", "-c", "user.name=t", "-c", "user.email=t@t", ...args]);
  await git(["init", "-q", join(dir, "src")]);
  await git(["-C", join(dir, "src"), "commit", "-q", "--allow-empty", "-m", "x"]);
  // A --separate-git-dir clone: its git dir holds no link back, so only the row can say.
  await git(["clone", "-q", `--separate-git-dir=${join(dir, "history")}`, join(dir, "src"), join(dir, "co")]);
  const r = await runTool("bb-prepare", ["shell", "--state-dir", state, "--cwd", join(dir, "co")]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`^ {2}cwd +${join(dir, "co")} \\(copied into the bottle, with the git history of ${join(dir, "history")}, which its \\.git file names\\)$`, "m"));
  const plain = await runTool("bb-prepare", ["shell", "--state-dir", state, "--cwd", join(dir, "src")]);
  assert.match(plain.stderr, new RegExp(`^ {2}cwd +${join(dir, "src")} \\(copied into the bottle\\)$`, "m"));
});

test("bb-prepare --help shows the exit-code table and an example", async () => {
  const r = await runTool("bb-prepare", ["--help"]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /Usage: bb-prepare \[options\] <agent>/);
  assert.match(r.stderr, /Exit codes:/);
  assert.match(r.stderr, /4\s+invalid manifest/);
});

test("bb-prepare runs under deno run", async (t) => {
  const state = await tempDir(t);
  const deno = await run([join(REPO, "node_modules/.bin/deno"), "run", "-A", join(REPO, "tools/bb-prepare/main.ts"), "shell", "--state-dir", state], {
    env: { NO_COLOR: "1" },
  });
  assert.equal(validatePlan(JSON.parse(deno.stdout)).agent.name, "shell");
});

test("bb-prepare runs as the tsup bundle", skipWhen(noBundle, "bb-prepare as the bundle"), async (t) => {
  const state = await tempDir(t);
  const node = await run(["node", BUNDLE, "shell", "--state-dir", state]);
  assert.equal(validatePlan(JSON.parse(node.stdout)).agent.name, "shell");
});

test("bb-prepare --owner-pid records the start flow's owner; a bad pid is a usage error", async (t) => {
  const state = await tempDir(t);
  const r = await runTool("bb-prepare", ["shell", "--state-dir", state, "--owner-pid", String(process.pid)]);
  assert.equal(r.code, 0, r.stderr);
  const plan = validatePlan(r.json());
  const owner = JSON.parse(await readFile(join(plan.files.dir, "owner.json"), "utf8"));
  assert.equal(owner.pid, process.pid);
  const bad = await runTool("bb-prepare", ["shell", "--state-dir", state, "--owner-pid", "abc"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--owner-pid "abc" is not a process id/);
});

test("bb-prepare --owner-pid claims the slug: a second start flow for it is refused while the first lives, and takes over once it is gone", async (t) => {
  const state = await tempDir(t);
  const flow = () => {
    const child = start(["sleep", "60"], { stdio: "ignore" });
    t.after(() => child.kill("SIGKILL"));
    return child;
  };
  const first = flow();
  const a = await runTool("bb-prepare", ["shell", "--state-dir", state, "--identity", "dev", "--owner-pid", String(first.pid)]);
  assert.equal(a.code, 0, a.stderr);
  const dir = join(state, "bottles", "dev");
  const before = await readFile(join(dir, "firewall", "policy.json"), "utf8");
  await writeFile(join(dir, "firewall", "policy.json"), before.replace("}", ', "marker": 1}'));
  const b = await runTool("bb-prepare", ["shell", "--state-dir", state, "--identity", "dev", "--owner-pid", String(flow().pid), "--json-errors"]);
  assert.equal(b.code, 1, b.stderr);
  assert.match(b.stderr, new RegExp(`^bb-prepare: error: Bottle dev belongs to another start flow \\(pid ${first.pid}, since [^)]+\\), which is starting or running it: wait until it is up \\(.just start slug=dev. then attaches beside it\\), or end that flow first$`, "m"));
  assert.equal(JSON.parse(b.stderr.trim().split("\n").pop()!).error.code, "BUSY");
  assert.equal(b.stdout, "", "a refused prepare printed a plan");
  assert.match(await readFile(join(dir, "firewall", "policy.json"), "utf8"), /"marker": 1/, "the refused flow rewrote the first one's files");
  assert.equal(JSON.parse(await readFile(join(dir, "owner.json"), "utf8")).pid, first.pid);
  first.kill("SIGKILL");
  await new Promise((r) => first.on("close", r));
  const third = flow();
  const c = await runTool("bb-prepare", ["shell", "--state-dir", state, "--identity", "dev", "--owner-pid", String(third.pid)]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(JSON.parse(await readFile(join(dir, "owner.json"), "utf8")).pid, third.pid);
});

test("bb-prepare --put-back with no copy to put back says so in one line and exits 0; --copy-before without --owner-pid is a usage error", async (t) => {
  const state = await tempDir(t);
  const made = await runTool("bb-prepare", ["shell", "--state-dir", state, "--identity", "dev"]);
  assert.equal(made.code, 0, made.stderr);
  const policy = await readFile(join(state, "bottles", "dev", "firewall", "policy.json"), "utf8");
  const r = await runTool("bb-prepare", ["--put-back", "--identity", "dev", "--owner-pid", String(process.pid), "--state-dir", state]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, new RegExp(`^bb-prepare: nothing to put back in ${join(state, "bottles", "dev")}: there is no copy flow/before\\.${process.pid} \\(.*\\)\\n$`));
  assert.equal(await readFile(join(state, "bottles", "dev", "firewall", "policy.json"), "utf8"), policy);
  const bad = await runTool("bb-prepare", ["shell", "--state-dir", state, "--identity", "dev", "--copy-before"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--copy-before .* needs --identity SLUG and --owner-pid PID/);
});

test("bb-prepare: two start flows given one new slug at the same moment: one prepares it, the other is refused and removes nothing", async (t) => {
  const state = await tempDir(t);
  const flows = [0, 1].map(() => {
    const child = start(["sleep", "60"], { stdio: "ignore" });
    t.after(() => child.kill("SIGKILL"));
    return child.pid!;
  });
  for (let round = 0; round < 3; round++) {
    const slug = `race-${round}`;
    const results = await Promise.all(flows.map((pid) => runTool("bb-prepare", ["shell", "--state-dir", state, "--identity", slug, "--owner-pid", String(pid)])));
    const ok = results.filter((r) => r.code === 0);
    assert.equal(ok.length, 1, results.map((r) => r.stderr).join("\n"));
    assert.match(results.find((r) => r.code !== 0)!.stderr, /belongs to another start flow/);
    const plan = validatePlan(ok[0].json());
    assert.ok(existsSync(plan.files.firewallPolicy), "the winner's bottle dir was removed by the loser");
    assert.equal(JSON.parse(await readFile(join(plan.files.dir, "owner.json"), "utf8")).pid, flows[results.indexOf(ok[0])]);
  }
});

test("bin/bb-prepare runs from source, and says so, when dist/ is older than the sources", skipWhen(noBundle, "bin/bb-prepare from source"), async () => {
  const { atime, mtime } = statSync(BUNDLE);
  await utimes(BUNDLE, new Date(1000), new Date(1000));
  try {
    const r = await run([join(REPO, "bin/bb-prepare"), "--help"], { env: { BB_FROM_SOURCE: undefined } });
    assert.match(r.stderr, /bb-prepare: dist\/ is older than \S+\.ts; running from source/);
    assert.match(r.stderr, /Usage: bb-prepare/);
  } finally {
    await utimes(BUNDLE, atime, mtime);
  }
  const fresh = await run([join(REPO, "bin/bb-prepare"), "--help"], { env: { BB_FROM_SOURCE: undefined } });
  assert.doesNotMatch(fresh.stderr, /running from source/, "dist/ was stale before this test: run npm run build (scripts/test.mjs does)");
});

test("forward_host_credentials with no login on the host to forward is refused before anything is written (it failed after the y/N, at bb-bundle)", async (t) => {
  const state = await tempDir(t);
  const home = await tempDir(t);
  const manifest = join(REPO, "tests/flow/testdata/bottles");
  const env = { HOME: home, CODEX_HOME: undefined, BB_FLOW_UNUSED_TOKEN: undefined } as unknown as Record<string, string>;
  const none = await runTool("bb-prepare", ["fwd", "--manifest-dir", manifest, "--state-dir", state], { env });
  assert.equal(none.code, 1, none.stderr);
  assert.equal(none.stderr, `bb-prepare: error: forward_host_credentials: no Codex credential on this host: set $BB_FLOW_UNUSED_TOKEN, or run codex login (${join(home, ".codex", "auth.json")})\n`);
  assert.equal(none.stdout, "");
  assert.deepEqual(existsSync(join(state, "bottles")) ? await readdir(join(state, "bottles")) : [], [], "a bottle was prepared");
  // Logged in: prepared, and the preflight says whose login goes to egress.
  await writeTree(home, { ".codex/auth.json": JSON.stringify({ OPENAI_API_KEY: "sk-host-login", tokens: null }) });
  const ok = await runTool("bb-prepare", ["fwd", "--manifest-dir", manifest, "--state-dir", state], { env });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /chatgpt\.com {2}bearer from \$BB_FLOW_UNUSED_TOKEN \(your host login, forwarded\)/);
  assert.doesNotMatch(ok.stdout + ok.stderr, /sk-host-login/);
});

test("forward_host_credentials over a host login that is a FIFO refuses it at once, naming it, with nothing prepared (reading it would wait for a writer forever)", async (t) => {
  const state = await tempDir(t);
  const home = await tempDir(t);
  await mkdir(join(home, ".codex"));
  const login = join(home, ".codex", "auth.json");
  await fifo(t, login);
  const env = { BB_FROM_SOURCE: "1", NO_COLOR: "1", HOME: home, CODEX_HOME: undefined, BB_FLOW_UNUSED_TOKEN: undefined };
  const r = await run([join(REPO, "bin/bb-prepare"), "fwd", "--manifest-dir", join(REPO, "tests/flow/testdata/bottles"), "--state-dir", state], { env, expect: ANY_EXIT, timeoutMs: 30_000 });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `bb-prepare: error: Cannot read ${login}: it is a FIFO, not a regular file\n`);
  assert.equal(r.stdout, "");
  assert.deepEqual(existsSync(join(state, "bottles")) ? await readdir(join(state, "bottles")) : [], [], "a bottle was prepared");
});
