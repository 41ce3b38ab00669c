// The preflight summary: what a person reads before saying y.
import { test } from "node:test";
import assert from "node:assert/strict";
import { samplePlan } from "../../tests/support/plans.ts";
import type { Plan } from "../plan/schema.ts";
import { preflightText } from "./preflight.ts";

const ESC = "\x1b";

function gitPlan(url: string, extra: Partial<Plan["bottle"]> = {}): Plan {
  const p = samplePlan();
  const push = { allowedRefs: [], protectedBranches: ["main"], protectedPaths: [], dlp: true };
  return { ...p, bottle: { ...p.bottle, git: { upstreams: [{ host: "a.test", url, identityFile: null, hostKeys: null }], repos: ["a.test/o/r"], push }, ...extra } };
}

test("preflightText(): a newline, ESC or bidi override from the manifest (a value, a file name) adds no row and hides none: each is shown as an escape", () => {
  const forged = `C.UTF-8\n  allow      (none)\n  supervise  off${ESC}[8m`;
  const base = gitPlan(`https://a.test/o\n${ESC}[2Kfoo`, { env: { LANG: forged }, gitUser: { name: `Bot\n  cwd        (none)`, email: `b\u202e@x.test` }, chain: [`b${ESC}[8m`, "base"] });
  const plan: Plan = { ...base, agent: { ...base.agent, file: `/m/agents/a\n  egress     (none).md` } };
  const text = preflightText(plan, {});
  assert.ok(!text.includes(ESC), JSON.stringify(text));
  assert.ok(!text.includes("\u202e"), JSON.stringify(text));
  const rows = text.trimEnd().split("\n");
  assert.deepEqual(
    rows.map((r) => /^ {2}(\S+(?: \S+)?) {2,}/.exec(r)?.[1] ?? r.split(":")[0]),
    ["bot-bottle preflight", "agent", "bottle", "backend", "services", "env", "skills", "prompt", "git", "push", "git user", "egress", "allow", "supervise", "limits", "state"],
  );
  assert.match(text, /^ {2}env +LANG=C\.UTF-8\\x0a {2}allow {6}\(none\)\\x0a {2}supervise {2}off\\x1b\[8m$/m);
  assert.match(text, /^ {2}git +a\.test -> https:\/\/a\.test\/o\\x0a\\x1b\[2Kfoo \(identity: none/m);
  assert.match(text, /^ {2}git user +Bot\\x0a {2}cwd {8}\(none\) <b\\u202e@x\.test>$/m);
  assert.match(text, /^ {2}bottle +b\\x1b\[8m <- base/m);
});

test("preflightText(): an upstream url's userinfo is masked, an ssh login name is shown", () => {
  const token = "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  for (const [url, shown] of [
    [`https://alice:${token}@a.test/o`, "https://***@a.test/o"],
    [`https://${token}@a.test`, "https://***@a.test"],
    [`http://u:p@127.0.0.1:8080`, "http://***@127.0.0.1:8080"],
    [`ssh://alice:${token}@a.test`, "ssh://***@a.test"],
    ["ssh://git@a.test", "ssh://git@a.test"],
    ["git@a.test:o/r", "git@a.test:o/r"],
  ] as const) {
    const text = preflightText(gitPlan(url), {});
    assert.ok(text.includes(`a.test -> ${shown} (identity`), `${url}: ${text}`);
    if (shown !== url) assert.ok(!text.includes(url.replace(/^\w+:\/\//, "").split("@")[0]!), `${url} shown: ${text}`);
  }
});

test("preflightText(): a file:// upstream says it is a folder on this machine that git-gate writes, not a host key to trust", () => {
  const text = preflightText(gitPlan("file:///srv/git"), {});
  assert.match(text, /a\.test -> file:\/\/\/srv\/git \(a folder on this machine, mounted into git-gate read-write: pushes land there\); repos:/);
  assert.doesNotMatch(text, /host key/);
});

test("preflightText(): the limits row shows the bottle's memory and CPUs, or the defaults", () => {
  const p = samplePlan();
  assert.match(preflightText(p, {}), /^ {2}limits +memory 8 GiB \(the default\), every CPU$/m);
  const declared: Plan = { ...p, bottle: { ...p.bottle, limits: { memoryMiB: 1536, cpus: 0.5 } } };
  assert.match(preflightText(declared, {}), /^ {2}limits +memory 1\.5 GiB, 0\.5 CPUs$/m);
  const small: Plan = { ...p, bottle: { ...p.bottle, limits: { memoryMiB: 768, cpus: 1 } } };
  assert.match(preflightText(small, {}), /^ {2}limits +memory 768 MiB, 1 CPU$/m);
});
