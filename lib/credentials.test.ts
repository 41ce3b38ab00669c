import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { BbError } from "./errors.ts";
import { forwardedCredentials, jwtClaims, placeholderJwt } from "./credentials.ts";
import { tempDir, writeTree } from "../tests/support/tmp.ts";
import { samplePlan } from "../tests/support/plans.ts";
import type { Plan } from "./plan/schema.ts";

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
const realJwt = (claims: Record<string, unknown>) => `${b64({ alg: "RS256" })}.${b64(claims)}.REALSIGNATURE-${"x".repeat(40)}`;

function plan(provider: "claude" | "codex", host: string, auth: "bearer" | "x-api-key" = "bearer"): Plan {
  const p = samplePlan();
  return {
    ...p,
    agent: { ...p.agent, provider, forwardHostCredentials: true },
    bottle: {
      ...p.bottle,
      egress: [{ host, auth, header: null, tokenEnv: provider === "claude" ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY", slot: "EGRESS_TOKEN_0", agentEnv: "X", placeholder: "bb-placeholder-egress-token-0" }],
    },
  };
}

test("codex: the ChatGPT login's access token goes to the slot; the agent's auth.json has placeholder JWTs with the real exp", async (t) => {
  const access = realJwt({ exp: 1893456000, sub: "user-1" });
  const id = realJwt({ exp: 1893456111, email: "me@example.test" });
  const home = await writeTree(await tempDir(t), {
    ".codex/auth.json": JSON.stringify({ OPENAI_API_KEY: null, tokens: { id_token: id, access_token: access, refresh_token: "REAL-REFRESH", account_id: "acct" } }),
  });
  const c = await forwardedCredentials(plan("codex", "chatgpt.com"), { home, env: {} });
  assert.deepEqual(c.slots, { EGRESS_TOKEN_0: access });
  const file = c.agentFiles["/home/node/.codex/auth.json"]!;
  assert.ok(!file.includes("REALSIGNATURE") && !file.includes("REAL-REFRESH"), "a real secret reached the agent's file");
  const dummy = JSON.parse(file);
  assert.equal(jwtClaims(dummy.tokens.access_token)!.exp, 1893456000);
  assert.equal(jwtClaims(dummy.tokens.id_token)!.email, "me@example.test");
  assert.equal(dummy.tokens.account_id, "acct");
});

test("codex: an API key login forwards the key and gives the agent the route's placeholder", async (t) => {
  const home = await writeTree(await tempDir(t), { ".codex/auth.json": JSON.stringify({ OPENAI_API_KEY: "sk-proj-real", tokens: null }) });
  const c = await forwardedCredentials(plan("codex", "api.openai.com"), { home, env: {} });
  assert.deepEqual(c.slots, { EGRESS_TOKEN_0: "sk-proj-real" });
  assert.equal(JSON.parse(c.agentFiles["/home/node/.codex/auth.json"]!).OPENAI_API_KEY, "bb-placeholder-egress-token-0");
});

test("claude: the host env key wins; else the OAuth token, which needs a bearer route", async (t) => {
  const home = await writeTree(await tempDir(t), { ".claude/.credentials.json": JSON.stringify({ claudeAiOauth: { accessToken: "oauth-real" } }) });
  assert.deepEqual((await forwardedCredentials(plan("claude", "api.anthropic.com", "x-api-key"), { home, env: { ANTHROPIC_API_KEY: "k" } })).slots, { EGRESS_TOKEN_0: "k" });
  assert.deepEqual((await forwardedCredentials(plan("claude", "api.anthropic.com"), { home, env: {} })).slots, { EGRESS_TOKEN_0: "oauth-real" });
  await assert.rejects(() => forwardedCredentials(plan("claude", "api.anthropic.com", "x-api-key"), { home, env: {} }), /declare the api\.anthropic\.com route with auth: bearer/);
});

test("missing routes and missing logins are clear errors; agents that do not ask forward nothing", async (t) => {
  const home = await tempDir(t);
  await assert.rejects(() => forwardedCredentials(plan("claude", "other.test"), { home, env: {} }), (e: unknown) => e instanceof BbError && /needs an egress route for api\.anthropic\.com/.test(e.message));
  await assert.rejects(() => forwardedCredentials(plan("codex", "chatgpt.com"), { home, env: {} }), /run codex login/);
  const off = { ...plan("codex", "chatgpt.com"), agent: { ...samplePlan().agent, forwardHostCredentials: false } };
  assert.deepEqual(await forwardedCredentials(off, { home, env: {} }), { slots: {}, agentFiles: {}, sources: [] });
});

test("a placeholder JWT carries the claims but not the signature", () => {
  const real = realJwt({ exp: 5 });
  const fake = placeholderJwt(real);
  assert.equal(jwtClaims(fake)!.exp, 5);
  assert.notEqual(fake.split(".")[2], real.split(".")[2]);
});
