import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { agentKeyFromEnv, isAgentKey, keyedAgentUrls, newAgentKey, proxyPassword } from "./agent-key.ts";

test("newAgentKey(): 48 hex digits, a new one each time", () => {
  const [a, b] = [newAgentKey(), newAgentKey()];
  assert.match(a, /^[0-9a-f]{48}$/);
  assert.notEqual(a, b);
});

test("proxyPassword() reads the password of a Basic Proxy-Authorization, whatever the user name; anything else is null", () => {
  const basic = (s: string) => `Basic ${Buffer.from(s).toString("base64")}`;
  assert.equal(proxyPassword(basic("bb:k3y")), "k3y");
  assert.equal(proxyPassword(basic(":k3y")), "k3y");
  assert.equal(proxyPassword(` basic  ${Buffer.from("u:a:b").toString("base64")} `), "a:b");
  for (const v of [undefined, "", "Bearer k3y", basic("no-colon"), "Basic !!!", ["Basic a", "Basic b"]]) assert.equal(proxyPassword(v), null, String(v));
});

test("isAgentKey() is true only for the key itself", () => {
  const key = newAgentKey();
  assert.ok(isAgentKey(key, key));
  for (const other of [null, undefined, "", key.slice(1), `${key}0`, key.toUpperCase()]) assert.ok(!isAgentKey(other, key), String(other));
});

test("agentKeyFromEnv() takes $BB_AGENT_KEY, and refuses to serve without one (or a short one), naming the flag", () => {
  const key = newAgentKey();
  assert.equal(agentKeyFromEnv({ BB_AGENT_KEY: key }), key);
  assert.throws(() => agentKeyFromEnv({}), /^BbError: --require-agent-key: \$BB_AGENT_KEY is not set/);
  assert.throws(() => agentKeyFromEnv({ BB_AGENT_KEY: "short" }), /^BbError: --require-agent-key: \$BB_AGENT_KEY is shorter than 32 characters/);
});

test("keyedAgentUrls() puts the key where each daemon looks for it: the proxy's password, the first path segment of git-gate's and supervise's", () => {
  const key = newAgentKey();
  const urls = { proxy: "http://127.0.0.16:40001", gitGate: "git://127.0.0.16:40002", supervise: "http://127.0.0.16:40003/mcp" };
  assert.deepEqual(keyedAgentUrls(urls, key), {
    proxy: `http://bb:${key}@127.0.0.16:40001`,
    gitGate: `git://127.0.0.16:40002/${key}`,
    supervise: `http://127.0.0.16:40003/${key}/mcp`,
  });
  assert.deepEqual(keyedAgentUrls({ ...urls, gitGate: null, supervise: null }, key), { proxy: `http://bb:${key}@127.0.0.16:40001`, gitGate: null, supervise: null });
  // What a client sends for that proxy URL is what the firewall reads.
  const proxy = new URL(keyedAgentUrls(urls, key).proxy);
  assert.equal(proxyPassword(`Basic ${Buffer.from(`${proxy.username}:${proxy.password}`).toString("base64")}`), key);
  // A proxy URL with credentials already (a plan from before they were kept out) is refused, not keyed twice.
  assert.throws(() => keyedAgentUrls({ ...urls, proxy: `http://bb:${key}@127.0.0.16:40001` }, key), /Cannot put the agent key into the proxy URL/);
});
