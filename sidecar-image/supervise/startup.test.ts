// supervise's start is on the start flow's critical path (bb-provision waits until it
// listens), and the MCP SDK is a good part of it: supervise listens first and loads the
// SDK at the first MCP request. A real process under node, whose module hooks say when the
// SDK is loaded.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { makeTestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { watch } from "../../lib/supervise/testdata/process.ts";
import { REPO_ROOT } from "../../lib/supervise/testdata/ts-argv.ts";
import { loadedLine, watchedModuleRun } from "../../tests/support/module-load.ts";

const LOADED = loadedLine("MCP SDK");

test("supervise listens before it loads the MCP SDK, and loads it for the first MCP session", async (t) => {
  const bottle = await makeTestBottle();
  t.after(() => bottle.remove());
  const run = watchedModuleRun(`${REPO_ROOT}/sidecar-image/supervise/main.ts`, ["--listen", "127.0.0.1:0", "--queue", bottle.queueDir, "--slug", bottle.slug], {
    "MCP SDK": "/@modelcontextprotocol/sdk/",
  });
  const daemon = watch(run.argv, run.env);
  t.after(() => daemon.stop());
  const m = await daemon.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+\/mcp)/, 20_000);
  assert.ok(!daemon.lines.includes(LOADED), `the MCP SDK was loaded before supervise listened:\n${daemon.lines.join("\n")}`);

  const client = new Client({ name: "startup-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(m[1]!)));
  t.after(() => client.close());
  await daemon.waitFor(new RegExp(`^${LOADED}$`), 20_000);
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((x) => x.name).sort(), ["ask_operator", "check_request", "request_host_access"]);
});
