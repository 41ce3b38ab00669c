// Escape suite, supervise (issue 4, property 12), against a real Docker engine: the agent
// asks for a host over MCP (streamable HTTP, from the agent's own node), the operator
// decides on the host with the real `bb-supervise`, and an approval takes effect live
// (firewall restarted alone) without dropping the agent's MCP session.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { removeAll, startBottle, tool, type Bottle } from "./support/bottle.ts";
import { curlIn } from "./support/curl.ts";
import { ESCAPE_DIR, newId } from "./support/env.ts";
import { startFakeInternet, type FakeInternet } from "./support/fake-internet.ts";

interface ToolAnswer {
  result?: { isError?: boolean; content: { text: string }[]; structuredContent?: { id: string; status: string; host: string | null } };
  error?: unknown;
}

describe("escape suite: supervise over MCP (docker)", () => {
  const id = newId();
  let state: string;
  let fake: FakeInternet | undefined;
  let bottle: Bottle | undefined;
  let client = "";

  before(async () => {
    state = await mkdtemp(join(tmpdir(), "bb-escape-sup-"));
    client = await readFile(join(ESCAPE_DIR, "testdata", "mcp-client.mjs"), "utf8");
    fake = await startFakeInternet(id);
    const f = fake;
    bottle = await startBottle({ stateRoot: state, upstreamCa: f.caFile, afterBundle: async ({ egressNet }) => void (await f.attach(egressNet)) });
  });

  after(async () => {
    await fake?.removeContainer();
    await removeAll([bottle]);
    await fake?.removeRest();
    await rm(state, { recursive: true, force: true });
  });

  async function mcp(...args: string[]): Promise<string> {
    const r = await bottle!.exec(["node", "--input-type=module", "-", ...args], { input: client });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  }
  const callTool = async (session: string, name: string, args: object) => JSON.parse(await mcp("call", session, name, JSON.stringify(args))) as ToolAnswer;

  /** The operator's view: wait for the agent's pending request for `host`. */
  async function pendingRequest(host: string): Promise<string> {
    for (let i = 0; i < 100; i++) {
      const r = await tool("bb-supervise", ["--plan", bottle!.planFile, "list", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      const found = (JSON.parse(r.stdout) as { id: string; host: string | null }[]).find((q) => q.host === host);
      if (found) return found.id;
      await sleep(200);
    }
    throw new Error(`no pending request for ${host} appeared`);
  }

  it("an approved host request takes effect live: the MCP call returns approved, other.test answers, and the same session still works", async () => {
    const before = await curlIn(bottle!, ["https://other.test/before"]);
    assert.equal(before.connect, "403", JSON.stringify(before));

    const { session } = JSON.parse(await mcp("open")) as { session: string };
    assert.match(session, /^[0-9a-f-]{36}$/);
    const asking = callTool(session, "request_host_access", { host: "other.test", reason: "the escape suite needs it" });
    const requestId = await pendingRequest("other.test");
    const approved = await tool("bb-supervise", ["--plan", bottle!.planFile, "approve", requestId]);
    assert.equal(approved.code, 0, approved.stderr);

    const answer = await asking;
    assert.equal(answer.result?.structuredContent?.status, "approved", JSON.stringify(answer));
    assert.match(answer.result!.content[0]!.text, /^Approved: other\.test is now allowed/);

    const start = (await fake!.events()).length;
    const now = await curlIn(bottle!, ["https://other.test/after"]);
    assert.equal(now.status, "200", JSON.stringify(now));
    assert.ok((await fake!.events()).slice(start).some((e) => e.kind === "http" && e.host === "other.test" && e.path === "/after"));

    // The firewall restarted; supervise did not: the session opened before still answers.
    const check = await callTool(session, "check_request", { id: requestId });
    assert.equal(check.result?.structuredContent?.status, "approved", JSON.stringify(check));
    assert.equal(check.result?.structuredContent?.host, "other.test");
  });

  it("a denied host request stays blocked, and the agent is told why", async () => {
    const { session } = JSON.parse(await mcp("open")) as { session: string };
    const asking = callTool(session, "request_host_access", { host: "denied.test", reason: "try" });
    const requestId = await pendingRequest("denied.test");
    const denied = await tool("bb-supervise", ["--plan", bottle!.planFile, "deny", requestId, "--reason", "not for this task"]);
    assert.equal(denied.code, 0, denied.stderr);
    const answer = await asking;
    assert.equal(answer.result?.structuredContent?.status, "denied", JSON.stringify(answer));
    assert.match(answer.result!.content[0]!.text, /not for this task/);
    const still = await curlIn(bottle!, ["https://denied.test/"]);
    assert.equal(still.connect, "403", JSON.stringify(still));
  });
});
