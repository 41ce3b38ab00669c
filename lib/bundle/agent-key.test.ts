import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BbError } from "../errors.ts";
import { fifo, settled } from "../../tests/support/fifo.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { AGENT_KEY_FILE, agentUrlsWithKey, bottleAgentKey } from "./agent-key.ts";

test("bottleAgentKey() makes the key once (0600) and hands back the same one after, however many ask at once", async (t) => {
  const dir = await tempDir(t);
  const keys = await Promise.all(Array.from({ length: 20 }, () => bottleAgentKey(dir)));
  assert.equal(new Set(keys).size, 1);
  assert.match(keys[0]!, /^[0-9a-f]{48}$/);
  assert.equal((await stat(join(dir, AGENT_KEY_FILE))).mode & 0o777, 0o600);
  assert.deepEqual(await readdir(dir), [AGENT_KEY_FILE], "no temporary file left");
  assert.equal(await bottleAgentKey(dir), keys[0], "a resumed bottle's bundle takes the key its agent's URLs carry");
});

test("bottleAgentKey() refuses a file that holds no key, naming it", async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, AGENT_KEY_FILE), "");
  await assert.rejects(bottleAgentKey(dir), new RegExp(`${join(dir, AGENT_KEY_FILE)} holds no agent key`));
});

test("bottleAgentKey() refuses an agent key file that is a FIFO (STATE, naming it) instead of waiting on it, Ctrl-C and all", async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, AGENT_KEY_FILE);
  await fifo(t, file);
  const err = await settled("bottleAgentKey done with the FIFO", bottleAgentKey(dir));
  assert.ok(err instanceof BbError && err.code === "STATE", String(err));
  assert.equal(err.message, `Cannot read the bottle's agent key ${file}: it is a FIFO, not a regular file: remove it, and start the bottle again`);
});

test("agentUrlsWithKey() keys the plan's URLs with the key from the file the bundle names; a bundle naming none (docker, or a plan whose URLs carry it) is taken as it is", async (t) => {
  const dir = await tempDir(t);
  const key = await bottleAgentKey(dir);
  const agentUrls = { proxy: "http://127.0.0.16:1", gitGate: "git://127.0.0.16:2", supervise: "http://127.0.0.16:3/mcp" };
  assert.deepEqual(await agentUrlsWithKey({ agentUrls, agentKeyFile: join(dir, AGENT_KEY_FILE) }), {
    proxy: `http://bb:${key}@127.0.0.16:1`,
    gitGate: `git://127.0.0.16:2/${key}`,
    supervise: `http://127.0.0.16:3/${key}/mcp`,
  });
  assert.deepEqual(await agentUrlsWithKey({ agentUrls }), agentUrls);
  await assert.rejects(agentUrlsWithKey({ agentUrls, agentKeyFile: join(dir, "gone") }), new RegExp(`Cannot read the bottle's agent key ${join(dir, "gone")}: it is gone`));
});
