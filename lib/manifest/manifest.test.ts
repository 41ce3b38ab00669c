import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, statSync } from "node:fs";
import { mkdir, rm, symlink } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { BbError } from "../errors.ts";
import { run } from "../proc.ts";
import { agentEnv } from "../vm/env.ts";
import { fifo, settled } from "../../tests/support/fifo.ts";
import { samplePlan } from "../../tests/support/plans.ts";
import { tempDir, writeTree } from "../../tests/support/tmp.ts";
import { bottleSection, bottleSource, loadAgent } from "./load.ts";
import { resolveBottle } from "./extends.ts";
import { reservedEnvReason } from "./reserved-env.ts";
import type { TestContext } from "node:test";

const shipped = new URL("../../bottles", import.meta.url).pathname;

/** A manifest tree with one agent "a" using bottle `bottle`, plus the given bottles. */
async function manifest(t: TestContext, bottles: Record<string, string>, agent = "---\nprovider: shell\nbottle: child\n---\n") {
  const files: Record<string, string> = { "agents/a.md": agent };
  for (const [name, fm] of Object.entries(bottles)) files[`${name}.md`] = `---\n${fm}\n---\n`;
  return writeTree(await tempDir(t), files);
}

async function loadError(dir: string, agent = "a"): Promise<BbError> {
  try {
    await loadAgent(dir, agent);
  } catch (e) {
    assert.ok(e instanceof BbError, `expected BbError, got ${e}`);
    return e;
  }
  assert.fail("expected loadAgent to fail");
}

test("shipped researcher resolves through base: env merged, supervise inherited, route slotted", async () => {
  const l = await loadAgent(shipped, "researcher");
  assert.equal(l.agent.provider, "claude");
  assert.deepEqual(l.chain, ["researcher", "base"]);
  const b = bottleSection(l);
  assert.equal(b.env.LANG, "C.UTF-8");
  assert.equal(b.supervise, true);
  assert.deepEqual(b.egress.map((r) => [r.host, r.slot, r.agentEnv]), [["api.anthropic.com", "EGRESS_TOKEN_0", "ANTHROPIC_API_KEY"]]);
  assert.ok(l.agent.prompt.includes("request_host_access"));
  assert.equal(l.skills[0]!.name, "commit-style");
});

test("every shipped agent (each bottles/agents/*.md) loads, with a known provider and a bottle chain that ends in a shipped bottle", async () => {
  const names = readdirSync(join(shipped, "agents")).filter((f) => f.endsWith(".md")).map((f) => f.slice(0, -3)).sort();
  for (const name of ["coder", "researcher", "shell"]) assert.ok(names.includes(name), `${name} is not among ${names.join(", ")}`);
  for (const name of names) {
    const l = await loadAgent(shipped, name);
    assert.ok(["claude", "codex", "shell"].includes(l.agent.provider), `${name}: provider ${l.agent.provider}`);
    assert.equal(l.chain[0], l.agent.bottle, name);
    const root = l.chain.at(-1)!;
    assert.ok(statSync(join(shipped, `${root}.md`)).isFile(), `${name}: its chain ${l.chain.join(" -> ")} ends in ${root}, which is no shipped bottle`);
  }
});

test("unknown key names the file and field and suggests the near miss", async (t) => {
  const dir = await manifest(t, { child: "egres: []" });
  const e = await loadError(dir);
  assert.equal(e.code, "MANIFEST_UNKNOWN_KEY");
  assert.match(e.message, /child\.md: field "egres": unknown key \(did you mean "egress"\?\)/);
});

test("unknown nested key names the dotted path", async (t) => {
  const dir = await manifest(t, { child: "egress:\n  - host: a.test\n    auth: bearer\n    token_env: T\n    tokn: x" });
  const e = await loadError(dir);
  assert.match(e.message, /field "egress\[0\]\.tokn": unknown key/);
});

test("wrong type names the field and what it got", async (t) => {
  const e = await loadError(await manifest(t, { child: "env: [a, b]" }));
  assert.equal(e.code, "MANIFEST_TYPE");
  assert.match(e.message, /child\.md: field "env": must be a mapping, got a list/);
});

test("a number in env is refused with a hint to quote it", async (t) => {
  const e = await loadError(await manifest(t, { child: "env:\n  PORT: 8080" }));
  assert.match(e.message, /field "env\.PORT": must be a string, got number 8080 \(quote it: "8080"\)/);
});

test("missing parent names the file, the field and suggests a bottle", async (t) => {
  const e = await loadError(await manifest(t, { child: "extends: bsae", base: "env: {}" }));
  assert.equal(e.code, "MANIFEST_EXTENDS");
  assert.match(e.message, /child\.md: field "extends": no bottle named "bsae" \(did you mean "base"\?\)/);
});

test("your own manifest dir extending the shipped base is told to copy it in", async (t) => {
  const dir = await manifest(t, { child: "extends: base" });
  const e = await loadError(dir);
  assert.match(e.message, /child\.md: field "extends": no bottle named "base"; bottles: child \(bot-bottle ships one: copy \S+\/bottles\/base\.md into /);
});

test("a parent written as its file name (base.md) is pointed at its name", async (t) => {
  const e = await loadError(await manifest(t, { child: "extends: base.md", base: "env: {}" }));
  assert.match(e.message, /child\.md: field "extends": no bottle named "base\.md" \(did you mean "base"\? names leave out \.md\)/);
});

test("self-extends is an error", async (t) => {
  const e = await loadError(await manifest(t, { child: "extends: child" }));
  assert.match(e.message, /child\.md: field "extends": bottle "child" extends itself/);
});

test("a two-bottle cycle prints the chain", async (t) => {
  const e = await loadError(await manifest(t, { child: "extends: other", other: "extends: child" }));
  assert.match(e.message, /cycle: child -> other -> child/);
});

test("a three-bottle cycle prints the whole chain", async (t) => {
  const e = await loadError(await manifest(t, { child: "extends: b", b: "extends: c", c: "extends: child" }));
  assert.match(e.message, /field "extends": cycle: child -> b -> c -> child/);
  assert.deepEqual(e.details.chain, ["child", "b", "c", "child"]);
});

test("non-string extends is an error", async (t) => {
  const e = await loadError(await manifest(t, { child: "extends: [base]", base: "" }));
  assert.equal(e.code, "MANIFEST_EXTENDS");
  assert.match(e.message, /field "extends": must be the name of one bottle \(a string\), got a list/);
});

test("an all-empty git_user is an error", async (t) => {
  const e = await loadError(await manifest(t, { child: 'git_user:\n  name: ""\n  email: ""' }));
  assert.match(e.message, /field "git_user": declares neither name nor email/);
});

test("limits: memory with its unit and cpus in hundredths are read; undeclared, both are null", async (t) => {
  for (const [yaml, want] of [
    ["limits: {memory: 8g, cpus: 2}", { memoryMiB: 8192, cpus: 2 }],
    ["limits: {memory: 1.5GiB}", { memoryMiB: 1536, cpus: null }],
    ["limits: {memory: 768MB, cpus: 0.25}", { memoryMiB: 768, cpus: 0.25 }],
    ["limits: {cpus: 1.5}", { memoryMiB: null, cpus: 1.5 }],
    ["env: {}", { memoryMiB: null, cpus: null }],
  ] as const) {
    const b = await resolved(t, { child: yaml });
    assert.deepEqual(b.limits, want, yaml);
  }
});

test("bad limits are refused naming the file and the field", async (t) => {
  for (const [yaml, field, why] of [
    ["limits: {memory: 8}", "limits.memory", /a size in m or g \(MiB or GiB: "512m", "8g", "1\.5GiB"\), got "?8"?$/],
    ["limits: {memory: 8x}", "limits.memory", /a size in m or g/],
    ["limits: {memory: 99999t}", "limits.memory", /a size in m or g \(MiB or GiB.*got "99999t"/],
    ["limits: {memory: 100m}", "limits.memory", /below 256m/],
    ["limits: {cpus: 0}", "limits.cpus", /from 0\.01 to 256/],
    ["limits: {cpus: 0.333}", "limits.cpus", /in hundredths/],
    ["limits: {cpus: \"2\"}", "limits.cpus", /a number of CPUs/],
    ["limits: {}", "limits", /declares neither memory nor cpus/],
    ["limits: {memroy: 8g}", "limits", /memroy/],
  ] as const) {
    const dir = await manifest(t, { child: yaml });
    const e = await loadError(dir);
    assert.equal(e.code, field === "limits" && /memroy/.test(yaml) ? "MANIFEST_UNKNOWN_KEY" : "MANIFEST_INVALID", yaml);
    assert.ok(e.message.startsWith(join(dir, "child.md")), e.message);
    assert.match(e.message, new RegExp(`field "${field.replace(".", "\\.")}`), yaml);
    assert.match(e.message, why, yaml);
  }
});

test("an agent whose bottle does not exist names the agent file", async (t) => {
  const dir = await manifest(t, { base: "" }, "---\nprovider: shell\nbottle: nope\n---\n");
  const e = await loadError(dir);
  assert.match(e.message, /agents\/a\.md: field "bottle": no bottle named "nope"/);
});

test("an unknown provider suggests the near miss", async (t) => {
  const dir = await manifest(t, { child: "" }, "---\nprovider: claud\nbottle: child\n---\n");
  const e = await loadError(dir);
  assert.match(e.message, /field "provider": unknown provider "claud" \(did you mean "claude"\?\); one of claude, codex, shell/);
});

test("an unknown agent lists the agents", async (t) => {
  const e = await loadError(await manifest(t, { child: "" }), "b");
  assert.equal(e.code, "MANIFEST_NOT_FOUND");
  assert.match(e.message, /no agent named "b".*agents: a/);
});

test("invalid YAML names the file and the line", async (t) => {
  const e = await loadError(await manifest(t, { child: "env:\n  A: 1\n   B: [" }));
  assert.equal(e.code, "MANIFEST_PARSE");
  assert.match(e.message, /child\.md:\d+: invalid YAML: [^\n]*[^:]$/);
  // A duplicate key on the YAML's second line is the file's third ("---" comes first).
  const dup = await loadError(await manifest(t, { child: "supervise: true\nsupervise: false" }));
  assert.match(dup.message, /child\.md:3: invalid YAML: /);
  assert.equal(dup.details.line, 3);
});

test("a file without frontmatter says how it must start", async (t) => {
  const dir = await writeTree(await tempDir(t), { "agents/a.md": "just text\n" });
  const e = await loadError(dir);
  assert.match(e.message, /agents\/a\.md: no YAML frontmatter/);
});

test("a frontmatter opened by \"---\" and never closed says so, not that there is none", async (t) => {
  for (const text of ["---\nprovider: shell\nbottle: base\n", "---", "---\r\nprovider: shell\r\n"]) {
    const dir = await writeTree(await tempDir(t), { "agents/a.md": text });
    const e = await loadError(dir);
    assert.match(e.message, /agents\/a\.md: the YAML frontmatter opened on line 1 is never closed by a line "---"$/, JSON.stringify(text));
  }
});

test("frontmatter fences are whole lines: trailing blanks are fine, \"---\" inside a line closes nothing", async (t) => {
  const spaced = await writeTree(await tempDir(t), { "agents/a.md": "--- \nprovider: shell\nbottle: b\n---\t\nBody.\n", "b.md": "---\n---\n" });
  const l = await loadAgent(spaced, "a");
  assert.equal(l.agent.provider, "shell");
  assert.equal(l.agent.prompt, "Body.");
  const inline = await writeTree(await tempDir(t), { "agents/a.md": "---\nprovider: shell\nbottle: b---\nrest\n" });
  assert.match((await loadError(inline)).message, /agents\/a\.md: the YAML frontmatter opened on line 1 is never closed by a line "---"$/);
  const dashes = await writeTree(await tempDir(t), { "agents/a.md": "----\nprovider: shell\n---\n" });
  assert.match((await loadError(dashes)).message, /agents\/a\.md: no YAML frontmatter/);
});

test("an empty or dots-only agent name is its own usage error, and a word too short or too far from a name gets no \"did you mean\"", async (t) => {
  const dir = await writeTree(await tempDir(t), { "agents/gu.md": "---\nprovider: shell\nbottle: b\n---\n", "agents/shell.md": "---\nprovider: shell\nbottle: b\n---\n" });
  const empty = await loadError(dir, "");
  assert.equal(empty.code, "USAGE");
  assert.match(empty.message, /^the agent name is empty: an agent is named by its file in .*\/agents, without \.md; agents: gu, shell$/);
  for (const dots of ["..", "."]) {
    const e = await loadError(dir, dots);
    assert.equal(e.code, "USAGE");
    assert.match(e.message, new RegExp(`^"${dots.replace(/\./g, "\\.")}" is not an agent name: `));
  }
  for (const far of ["xy", "zzu", "abcdef"]) {
    const e = await loadError(dir, far);
    assert.equal(e.code, "MANIFEST_NOT_FOUND");
    assert.doesNotMatch(e.message, /did you mean/, far);
  }
  assert.match((await loadError(dir, "shel")).message, /no agent named "shel" .*\(did you mean "shell"\?\)/);
  assert.match((await loadError(dir, "gux")).message, /\(did you mean "gu"\?\)/);
});

test("a routed host cannot be tls_passthrough", async (t) => {
  const e = await loadError(
    await manifest(t, { child: "egress:\n  - {host: api.test, auth: bearer, token_env: T}\nallow_hosts:\n  - {host: api.test, tls_passthrough: true}" }),
  );
  assert.match(e.message, /field "allow_hosts\[0\]\.tls_passthrough": "api\.test" has an egress route/);
});

test("allow_hosts ports: listed ports are kept sorted and unique; bad ones name the field", async (t) => {
  const b = await resolved(t, { child: "allow_hosts:\n  - {host: dev.test, ports: [8443, 443, 8443]}\n  - plain.test" });
  assert.deepEqual(b.allowHosts, [
    { host: "dev.test", tlsPassthrough: false, ports: [443, 8443] },
    { host: "plain.test", tlsPassthrough: false, ports: null },
  ]);
  for (const [ports, why] of [
    ["[]", /field "allow_hosts\[0\]\.ports": is empty/],
    ["[443, 70000]", /field "allow_hosts\[0\]\.ports\[1\]": must be a port number from 1 to 65535, got 70000/],
    ['["443"]', /field "allow_hosts\[0\]\.ports\[0\]": must be a port number from 1 to 65535, got "443"/],
    ["443", /field "allow_hosts\[0\]\.ports"/],
  ] as const) {
    const e = await loadError(await manifest(t, { child: `allow_hosts:\n  - {host: dev.test, ports: ${ports}}` }));
    assert.match(e.message, why, ports);
  }
});

test("allow_hosts: a host:port points at the ports form; one host listed twice (in any case) is refused", async (t) => {
  const port = await loadError(await manifest(t, { child: "allow_hosts: [docs.python.org:8443]" }));
  assert.match(port.message, /field "allow_hosts\[0\]": "docs\.python\.org:8443" is not a valid host name: give the port apart \(\{host: docs\.python\.org, ports: \[8443\]\}\)/);
  const twice = await loadError(await manifest(t, { child: "allow_hosts: [docs.python.org, Docs.Python.org]" }));
  assert.match(twice.message, /field "allow_hosts\[1\]": "docs\.python\.org" is listed already \(allow_hosts\[0\]\)/);
});

test("an upstream url git-gate cannot fetch over is refused, naming the field; every transport it can is taken", async (t) => {
  for (const url of ["ftp://a.test", "ext::sh -c evil", "a.test/o", "/srv/git", "https:/a.test"]) {
    const e = await loadError(await manifest(t, { child: `git:\n  upstreams:\n    a.test: {url: '${url}'}\n  repos: [a.test/o/r]` }));
    assert.match(e.message, /field "git\.upstreams\.a\.test\.url": ".*" is not a URL git-gate can fetch from: use ssh:\/\//, url);
  }
  for (const url of ["ssh://git@a.test", "https://a.test", "http://127.0.0.1:8080", "git://127.0.0.1:1", "file:///srv/git", "git@a.test:", "GIT@a.test:org"]) {
    const b = await resolved(t, { child: `git:\n  upstreams:\n    a.test: {url: '${url}'}\n  repos: [a.test/o/r]` });
    assert.equal(b.git?.upstreams[0]?.url, url);
  }
  // The scheme is kept in lower case, as bb-bundle and git-gate read it (FILE:// is a folder too).
  const upper = await resolved(t, { child: `git:\n  upstreams:\n    a.test: {url: 'FILE:///Srv/Git'}\n  repos: [a.test/o/r]` });
  assert.equal(upper.git?.upstreams[0]?.url, "file:///Srv/Git");
});

test("a repo whose host has no upstream is an error", async (t) => {
  const e = await loadError(await manifest(t, { child: "git:\n  upstreams:\n    a.test: {url: 'file:///x'}\n  repos: [b.test/o/r]" }));
  assert.match(e.message, /field "git\.repos\[0\]": host "b\.test" has no entry under git\.upstreams/);
});

test('auth "header" requires a header name', async (t) => {
  const e = await loadError(await manifest(t, { child: "egress:\n  - {host: a.test, auth: header, token_env: T}" }));
  assert.match(e.message, /field "egress\[0\]\.header": is required when auth is "header"/);
});

test("a missing skill folder names the agent field", async (t) => {
  const dir = await manifest(t, { child: "" }, "---\nprovider: shell\nbottle: child\nskills: [nope]\n---\n");
  const e = await loadError(dir);
  assert.match(e.message, /agents\/a\.md: field "skills\[0\]": no skill folder/);
});

// --- merge rules -----------------------------------------------------------------------

const routeA = "  - {host: a.test, auth: bearer, token_env: TA}";
const routeB = "  - {host: b.test, auth: x-api-key, token_env: TB}";

async function resolved(t: TestContext, bottles: Record<string, string>) {
  return bottleSection(await loadAgent(await manifest(t, bottles), "a"));
}

test("env merges by key and the child wins", async (t) => {
  const b = await resolved(t, { child: "extends: base\nenv: {A: child, C: c}", base: "env: {A: base, B: b}" });
  assert.deepEqual(b.env, { A: "child", B: "b", C: "c" });
});

test("a child that only declares extends inherits everything", async (t) => {
  const b = await resolved(t, {
    child: "extends: base",
    base: `env: {A: a}\nsupervise: true\negress:\n${routeA}\nallow_hosts: [x.test]\nsensitive_env: [S]\ngit_user: {name: N}`,
  });
  assert.deepEqual(b.env, { A: "a" });
  assert.equal(b.supervise, true);
  assert.deepEqual(b.egress.map((r) => r.host), ["a.test"]);
  assert.deepEqual(b.allowHosts, [{ host: "x.test", tlsPassthrough: false, ports: null }]);
  assert.deepEqual(b.sensitiveEnv, ["S"]);
  assert.deepEqual(b.gitUser, { name: "N", email: null });
});

test("egress, allow_hosts, supervise and git replace whole when the child declares them", async (t) => {
  const b = await resolved(t, {
    child: `extends: base\negress:\n${routeB}\nallow_hosts: [y.test]\nsupervise: false\ngit:\n  upstreams:\n    c.test: {url: 'file:///c'}\n  repos: [c.test/o/r]`,
    base: `egress:\n${routeA}\nallow_hosts: [x.test]\nsupervise: true\ngit:\n  upstreams:\n    p.test: {url: 'file:///p'}\n  repos: [p.test/o/r]`,
  });
  assert.deepEqual(b.egress.map((r) => r.host), ["b.test"]);
  assert.deepEqual(b.allowHosts.map((h) => h.host), ["y.test"]);
  assert.equal(b.supervise, false);
  assert.deepEqual(b.git?.repos, ["c.test/o/r"]);
  assert.deepEqual(b.git?.upstreams.map((u) => u.host), ["c.test"]);
});

test("an explicitly empty list in the child clears the parent's", async (t) => {
  const b = await resolved(t, { child: "extends: base\negress: []\nallow_hosts: []", base: `egress:\n${routeA}\nallow_hosts: [x.test]` });
  assert.deepEqual(b.egress, []);
  assert.deepEqual(b.allowHosts, []);
});

test("git_user overlays per field", async (t) => {
  const b = await resolved(t, { child: "extends: base\ngit_user: {email: c@x.test}", base: "git_user: {name: Parent, email: p@x.test}" });
  assert.deepEqual(b.gitUser, { name: "Parent", email: "c@x.test" });
});

test("limits overlay per field, like git_user", async (t) => {
  const b = await resolved(t, { child: "extends: base\nlimits: {cpus: 4}", base: "limits: {memory: 16g, cpus: 1}" });
  assert.deepEqual(b.limits, { memoryMiB: 16384, cpus: 4 });
  const inherited = await resolved(t, { child: "extends: base", base: "limits: {memory: 2g}" });
  assert.deepEqual(inherited.limits, { memoryMiB: 2048, cpus: null });
});

test("a chain of three merges grandparent, parent and child in order", async (t) => {
  const l = await loadAgent(
    await manifest(t, {
      child: "extends: parent\nenv: {C: child, X: child}",
      parent: `extends: grand\nenv: {P: parent, X: parent}\negress:\n${routeB}`,
      grand: `env: {G: grand, X: grand}\negress:\n${routeA}\nsupervise: true`,
    }),
    "a",
  );
  assert.deepEqual(l.chain, ["child", "parent", "grand"]);
  const b = bottleSection(l);
  assert.deepEqual(b.env, { G: "grand", P: "parent", C: "child", X: "child" });
  assert.deepEqual(b.egress.map((r) => r.host), ["b.test"]);
  assert.equal(b.supervise, true);
});

test("a diamond (two children of one parent) parses the parent once and both inherit", async (t) => {
  const dir = await manifest(t, { child: "extends: base\nenv: {C: 1x}", other: "extends: base\nenv: {O: o}", base: "env: {B: b}\nsupervise: true" });
  const source = bottleSource(dir);
  const loads: string[] = [];
  const counting = { names: source.names, load: (n: string) => (loads.push(n), source.load(n)) };
  const memo = new Map();
  const [a, b] = await Promise.all([resolveBottle("child", counting, memo), resolveBottle("other", counting, memo)]);
  assert.deepEqual(a.decl.env, { B: "b", C: "1x" });
  assert.deepEqual(b.decl.env, { B: "b", O: "o" });
  assert.equal(loads.filter((n) => n === "base").length, 1);
});

test("identity_file expands ~ and resolves relative paths against the bottle file", async (t) => {
  const dir = await manifest(t, { child: "git:\n  upstreams:\n    a.test: {url: 'ssh://git@a.test', identity_file: keys/id}\n  repos: [a.test/o/r]" });
  const b = bottleSection(await loadAgent(dir, "a"));
  assert.equal(b.git?.upstreams[0]!.identityFile, join(dir, "keys/id"));
  assert.deepEqual(b.git?.push.protectedBranches, ["main", "master"]);
});

test("host_key pins an ssh upstream's key (one or a list); anything else names the field", async (t) => {
  const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
  const up = (extra: string, url = "ssh://git@a.test") => `git:\n  upstreams:\n    a.test: {url: '${url}', ${extra}}\n  repos: [a.test/o/r]`;
  const one = bottleSection(await loadAgent(await manifest(t, { child: up(`host_key: '${key}'`) }), "a"));
  assert.deepEqual(one.git?.upstreams[0]!.hostKeys, [key]);
  const two = bottleSection(await loadAgent(await manifest(t, { child: up(`host_key: ['${key} comment', 'ecdsa-sha2-nistp256 AAAAE2VjZHNh']`, "git@a.test:") }), "a"));
  assert.equal(two.git?.upstreams[0]!.hostKeys?.length, 2);
  assert.equal(bottleSection(await loadAgent(await manifest(t, { child: up("identity_file: k") }), "a")).git?.upstreams[0]!.hostKeys, null);
  for (const [extra, url, why] of [
    [`host_key: 'a.test ${key}'`, "ssh://git@a.test", /field "git\.upstreams\.a\.test\.host_key": "a\.test ssh-ed25519 .*" is not a public host key/],
    [`host_key: ['${key}', 'nope']`, "ssh://git@a.test", /field "git\.upstreams\.a\.test\.host_key\[1\]": "nope" is not a public host key/],
    ["host_key: []", "ssh://git@a.test", /field "git\.upstreams\.a\.test\.host_key": is empty/],
    [`host_key: '${key}'`, "https://a.test", /field "git\.upstreams\.a\.test\.host_key": only applies to an ssh upstream/],
  ] as const) {
    const e = await loadError(await manifest(t, { child: up(extra, url) }));
    assert.match(e.message, why, extra);
  }
});

test("a broken symlink beside the agent's files blocks nothing; using it names the file", async (t) => {
  const dir = await manifest(t, { child: "allow_hosts: []" });
  await symlink("/nonexistent/old.md", join(dir, "agents/old.md"));
  await symlink("/nonexistent/gone.md", join(dir, "gone.md"));
  const loaded = await loadAgent(dir, "a");
  assert.equal(loaded.agent.name, "a");
  const e = await loadError(dir, "old");
  assert.equal(e.code, "MANIFEST_NOT_FOUND");
  assert.match(e.message, /Cannot read .*agents\/old\.md: ENOENT/);
});

test("forward_host_credentials without a route for the provider's host is refused at load, naming the agent file", async (t) => {
  const dir = await manifest(t, { child: "egress:\n  - host: api.example.com\n    auth: bearer\n    token_env: SOME_TOKEN" }, "---\nprovider: claude\nbottle: child\nforward_host_credentials: true\n---\n");
  const e = await loadError(dir);
  assert.equal(e.code, "MANIFEST_INVALID");
  assert.match(e.message, /agents\/a\.md: field "forward_host_credentials": needs an egress route for api\.anthropic\.com in bottle child/);
});

// --- what reaches a terminal, a config file or the agent's environment -------------------

test("a control character in an env value, git_user, a description or an upstream url is refused, naming the file and the field", async (t) => {
  const up = (url: string) => `git:\n  upstreams:\n    a.test: {url: "${url}"}\n  repos: [a.test/o/r]`;
  for (const [child, field, shown] of [
    [String.raw`env: {LANG: "C.UTF-8\n  allow      (none)"}`, "env.LANG", String.raw`\x0a`],
    [String.raw`env: {LANG: "C.UTF-8\e[8m"}`, "env.LANG", String.raw`\x1b`],
    [String.raw`env: {LANG: "C\u202eUTF"}`, "env.LANG", String.raw`\u202e`],
    [String.raw`git_user: {name: "Bot\n[core]\n\tfsmonitor = touch /tmp/x"}`, "git_user.name", String.raw`\x0a`],
    [String.raw`git_user: {email: "b@x.test\e[2K"}`, "git_user.email", String.raw`\x1b`],
    [String.raw`description: "ok\rforged"`, "description", String.raw`\x0d`],
    [up(String.raw`https://a.test\n\e[2Kfoo`), "git.upstreams.a.test.url", String.raw`\x0a`],
  ] as const) {
    const e = await loadError(await manifest(t, { child }));
    assert.equal(e.code, "MANIFEST_INVALID", child);
    assert.equal(e.message.split("\n").length, 1, e.message);
    assert.ok(e.message.includes(`child.md: field "${field}": holds a control character (${shown}): write it as one line of plain text`), e.message);
  }
  const agent = await loadError(await manifest(t, { child: "" }, '---\nprovider: shell\nbottle: child\ndescription: "a\\e[8m"\nenv: {EDITOR: vi}\n---\n'));
  assert.match(agent.message, /agents\/a\.md: field "description": holds a control character \(\\x1b\)/);
  const agentEnv = await loadError(await manifest(t, { child: "" }, '---\nprovider: shell\nbottle: child\nenv: {EDITOR: "vi\\n"}\n---\n'));
  assert.match(agentEnv.message, /agents\/a\.md: field "env\.EDITOR": holds a control character \(\\x0a\)/);
  const spaced = await loadError(await manifest(t, { child: up("https://a.test/o r") }));
  assert.match(spaced.message, /child\.md: field "git\.upstreams\.a\.test\.url": "https:\/\/a\.test\/o r" holds a space: a URL has none/);
  // Names and descriptions are trimmed (a YAML block scalar ends in a newline); non-ASCII stays.
  const b = await resolved(t, { child: 'git_user: {name: "R2-D2 #1 ünïcode  "}\ndescription: |\n  one line\nenv: {GREETING: "héllo wörld 👋"}' });
  assert.deepEqual(b.gitUser, { name: "R2-D2 #1 ünïcode", email: null });
  assert.equal(b.env.GREETING, "héllo wörld 👋");
});

test("a name bot-bottle keeps for itself is refused in env, agent env and a route's placeholder, naming the file, the field, the name and why", async (t) => {
  for (const [name, why] of [
    ["PATH", "it decides which programs or code run when a command in the bottle starts"],
    ["LD_PRELOAD", "it decides which programs"],
    ["LD_LIBRARY_PATH", "it decides which programs"],
    ["NODE_OPTIONS", "it decides which programs"],
    ["BASH_ENV", "it decides which programs"],
    ["ENV", "it decides which programs"],
    ["GIT_CONFIG_GLOBAL", "it decides which programs"],
    ["GIT_CONFIG_COUNT", "it decides which programs"],
    ["GIT_EXEC_PATH", "it decides which programs"],
    ["GIT_SSH_COMMAND", "it decides which programs"],
    ["GIT_ASKPASS", "it decides which programs"],
    ["GIT_PROXY_COMMAND", "it decides which programs"],
    ["HOME", "the agent's user, home and shell are the bottle's own"],
    ["USER", "the agent's user, home and shell"],
    ["SHELL", "the agent's user, home and shell"],
    ["HTTPS_PROXY", "bot-bottle sets the proxy: the firewall is the bottle's only way out"],
    ["https_proxy", "bot-bottle sets the proxy"],
    ["No_Proxy", "bot-bottle sets the proxy"],
    ["ALL_PROXY", "bot-bottle sets the proxy"],
    ["NODE_EXTRA_CA_CERTS", "it decides which CA the bottle trusts"],
    ["SSL_CERT_FILE", "it decides which CA the bottle trusts"],
    ["SSL_CERT_DIR", "it decides which CA"],
    ["GIT_SSL_CAINFO", "it decides which CA"],
    ["REQUESTS_CA_BUNDLE", "it decides which CA"],
    ["BB_SLUG", "BB_ names are bot-bottle's own"],
  ] as const) {
    const env = await loadError(await manifest(t, { child: `env: {${name}: x}` }));
    assert.equal(env.code, "MANIFEST_INVALID", name);
    assert.ok(env.message.includes(`child.md: field "env.${name}": ${name} cannot be set in the bottle: ${why}`), env.message);
    assert.match(env.message, /; leave it out$/);
    const agentEnv = await loadError(await manifest(t, { child: "" }, `---\nprovider: shell\nbottle: child\nenv: {${name}: x}\n---\n`));
    assert.ok(agentEnv.message.includes(`agents/a.md: field "env.${name}": ${name} cannot be set in the bottle`), agentEnv.message);
    const route = await loadError(await manifest(t, { child: `egress:\n  - {host: a.test, auth: bearer, token_env: T, agent_env: ${name}}` }));
    assert.ok(route.message.includes(`child.md: field "egress[0].agent_env": ${name} cannot be set in the bottle: ${why}`), route.message);
    assert.match(route.message, /; give the placeholder another name$/);
  }
  // token_env is a host name: reserved only when it names the placeholder too.
  const byDefault = await loadError(await manifest(t, { child: "egress:\n  - {host: a.test, auth: bearer, token_env: BB_TOKEN}" }));
  assert.match(byDefault.message, /field "egress\[0\]\.token_env": BB_TOKEN cannot be set in the bottle: .*: set agent_env$/);
  const b = await resolved(t, {
    child: "env: {EDITOR: vi, LANG: C.UTF-8, PATHS: a, MY_HOME: b, GIT_AUTHOR_NAME: c, LD: d, http_proxy_note: e}\negress:\n  - {host: a.test, auth: bearer, token_env: BB_TOKEN, agent_env: A_TOKEN}",
  });
  assert.deepEqual(Object.keys(b.env).sort(), ["EDITOR", "GIT_AUTHOR_NAME", "LANG", "LD", "MY_HOME", "PATHS", "http_proxy_note"]);
  assert.equal(b.egress[0]!.agentEnv, "A_TOKEN");
});

test("every name bot-bottle sets in the agent's environment itself is one a manifest may not set", () => {
  const p = samplePlan();
  const plan = {
    ...p,
    bottle: { ...p.bottle, env: {} },
    bundle: {
      container: "c", image: "i", networks: { internal: "n", egress: "e" }, networkIds: null, caCert: "/ca.pem",
      agentUrls: { proxy: "http://firewall:8888", gitGate: "git://git-gate:9418", supervise: "http://supervise:9100/mcp" },
      hostPorts: null, loopbackAddr: "127.0.0.16", startedAt: "t",
    },
  };
  const names = Object.keys(agentEnv(plan));
  assert.ok(names.includes("HOME") && names.includes("BB_SUPERVISE_URL"), names.join(" "));
  for (const name of names) assert.notEqual(reservedEnvReason(name), null, `${name} is set by bot-bottle but a manifest may set it too`);
});

test("a YAML alias bomb is a parse error naming the file, not an internal one", async (t) => {
  const bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]";
  const e = await loadError(await manifest(t, { child: bomb }));
  assert.equal(e.code, "MANIFEST_PARSE");
  assert.match(e.message, /child\.md: invalid YAML: Excessive alias count/);
  assert.equal(e.details.file, join(dirname(e.details.file as string), "child.md"));
});

test("skills: a link inside is fine; a skill folder that is a link, or one holding a FIFO or socket, is refused naming the agent file, the skill and the file", async (t) => {
  const agent = (skill: string) => `---\nprovider: shell\nbottle: child\nskills: [ok, ${skill}]\n---\n`;
  const dir = await manifest(t, { child: "" }, agent("ok"));
  await writeTree(dir, { "skills/ok/SKILL.md": "# ok\n", "elsewhere/s/SKILL.md": "# s\n" });
  await symlink("SKILL.md", join(dir, "skills/ok/alias.md"));
  assert.deepEqual((await loadAgent(dir, "a")).skills.map((s) => s.name), ["ok", "ok"]);

  await symlink(join(dir, "elsewhere/s"), join(dir, "skills/linked"));
  await writeTree(dir, { "agents/a.md": agent("linked") });
  const linked = await loadError(dir);
  assert.equal(linked.code, "MANIFEST_INVALID");
  assert.ok(
    linked.message.includes(`agents/a.md: field "skills[1]": the skill folder ${join(dir, "skills/linked")} is a symlink (to ${join(dir, "elsewhere/s")})`),
    linked.message,
  );

  await writeTree(dir, { "skills/odd/SKILL.md": "# odd\n", "agents/a.md": agent("odd") });
  await mkdir(join(dir, "skills/odd/deep"));
  await run(["mkfifo", join(dir, "skills/odd/deep/pipe")]);
  const fifo = await loadError(dir);
  assert.ok(fifo.message.includes(`agents/a.md: field "skills[1]": skill ${join(dir, "skills/odd")} holds ${join(dir, "skills/odd/deep/pipe")}, a FIFO`), fifo.message);
  await rm(join(dir, "skills/odd/deep/pipe"));
  const server = createServer();
  await new Promise<void>((ok) => server.listen(join(dir, "skills/odd/sock"), ok));
  t.after(() => server.close());
  const sock = await loadError(dir);
  assert.match(sock.message, /skills\/odd\/sock, a socket: a skill may hold only files, folders and links$/);
});

test("a manifest file that is a FIFO is refused (MANIFEST_INVALID, naming it) instead of waited on", async (t) => {
  const dir = await manifest(t, {});
  await fifo(t, join(dir, "child.md"));
  const err = await settled("the load done with the FIFO", loadAgent(dir, "a"));
  assert.ok(err instanceof BbError && err.code === "MANIFEST_INVALID", String(err));
  assert.equal(err.message, `${join(dir, "child.md")}: it is a FIFO, not a regular file: a manifest is a Markdown file`);
});
