// Escape suite, supervise (issue 4, property 12), against a real Docker engine: the agent
// asks for a host over MCP (streamable HTTP, from the agent's own node), the operator
// decides on the host with the real `bb-supervise`, and an approval takes effect live (the
// firewall re-reads its policy) without dropping the agent's MCP session or a connection
// open through the firewall.
import assert from "node:assert/strict";
import { lstatSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { daemonIdMap } from "../../lib/layout.ts";
import { ANY_EXIT, run } from "../../lib/proc.ts";
import { removeAll, startBottle, tool, type Bottle } from "./support/bottle.ts";
import { curlIn } from "./support/curl.ts";
import { ESCAPE_DIR, newId } from "./support/env.ts";
import { startFakeInternet, type FakeInternet } from "./support/fake-internet.ts";

/** In the agent: GET http://allowed.test/ through the firewall, wait for /tmp/approved,
 * GET again on the same connection; prints the two statuses ("closed" if it was cut). */
const HELD_CONNECTION = `
import net from "node:net";
import { existsSync, writeFileSync } from "node:fs";
const s = net.connect(8888, "firewall");
let text = "", closed = false;
s.on("data", (d) => (text += d)).on("close", () => (closed = true)).on("error", () => {});
const statuses = () => [...text.matchAll(/HTTP\\/1\\.1 (\\d{3})/g)].map((m) => m[1]);
const get = (path) => s.write("GET http://allowed.test" + path + " HTTP/1.1\\r\\nHost: allowed.test\\r\\n\\r\\n");
const until = async (ok) => { for (let i = 0; i < 600 && !ok() && !closed; i++) await new Promise((r) => setTimeout(r, 50)); };
get("/held-1");
await until(() => statuses().length >= 1);
writeFileSync("/tmp/first-answered", "");
await until(() => existsSync("/tmp/approved"));
if (!closed) get("/held-2");
await until(() => statuses().length >= 2);
console.log(statuses().length >= 2 ? statuses().join(" ") : statuses().concat("closed").join(" "));
s.destroy();
`;

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

  it("an approved host request takes effect live: the MCP call returns approved, other.test answers, the same session still works, and a connection held through the firewall is not cut", async () => {
    const before = await curlIn(bottle!, ["https://other.test/before"]);
    assert.equal(before.connect, "403", JSON.stringify(before));

    const { session } = JSON.parse(await mcp("open")) as { session: string };
    assert.match(session, /^[0-9a-f-]{36}$/);
    const asking = callTool(session, "request_host_access", { host: "other.test", reason: "the escape suite needs it" });
    const requestId = await pendingRequest("other.test");
    // A keep-alive connection through the firewall, as a streaming answer would hold one:
    // one request before the approval, one on the same connection after it.
    await bottle!.exec(["rm", "-f", "/tmp/approved"]);
    const held = bottle!.exec(["node", "--input-type=module", "-e", HELD_CONNECTION]);
    for (let i = 0; i < 100 && (await bottle!.exec(["test", "-e", "/tmp/first-answered"])).code !== 0; i++) await sleep(100);
    const approved = await tool("bb-supervise", ["--plan", bottle!.planFile, "approve", requestId]);
    assert.equal(approved.code, 0, approved.stderr);
    await bottle!.exec(["touch", "/tmp/approved"]);
    const heldOut = await held;
    assert.equal(heldOut.stdout.trim(), "200 200", `the approval broke a connection open through the firewall: ${heldOut.stdout} ${heldOut.stderr}`);

    const answer = await asking;
    assert.equal(answer.result?.structuredContent?.status, "approved", JSON.stringify(answer));
    assert.match(answer.result!.content[0]!.text, /^Approved: other\.test is now allowed/);

    const start = (await fake!.events()).length;
    const now = await curlIn(bottle!, ["https://other.test/after"]);
    assert.equal(now.status, "200", JSON.stringify(now));
    assert.ok((await fake!.events()).slice(start).some((e) => e.kind === "http" && e.host === "other.test" && e.path === "/after"));

    // Supervise was not restarted: the session opened before still answers.
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

  it("the supervise daemon reaches only the queue folder of the bottle's state: it cannot swap the queue for a symlink that bb-supervise would follow on the host", async () => {
    const ids = daemonIdMap({ uid: process.getuid!(), gid: process.getgid!() }).supervise;
    const swap = await run(["docker", "exec", "-u", `${ids.uid}:${ids.gid}`, bottle!.bundle, "sh", "-c", "ls -A /bb/supervise; mv /bb/supervise/queue /bb/supervise/moved && ln -s / /bb/supervise/queue"], { expect: ANY_EXIT });
    assert.notEqual(swap.code, 0, swap.stdout + swap.stderr);
    assert.equal(swap.stdout.trim(), "queue", "the daemon sees the queue and nothing else of the bottle's folder");
    assert.ok(lstatSync(bottle!.plan.files.superviseQueue!).isDirectory(), "the queue on the host is still a real folder");
  });
});
