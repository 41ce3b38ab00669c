// supervise as a real process on loopback, driven by the SDK's real MCP client; the
// operator side is the real bb-supervise tool (as a subprocess) or its library.
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { after, before, describe, test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { run } from "../../lib/proc.ts";
import { answerRequest, approveRequest, denyRequest } from "../../lib/supervise/decide.ts";
import { listRequests, type QueueRequest } from "../../lib/supervise/queue.ts";
import { FirewallPolicy } from "../../lib/sidecar-config.ts";
import { makeTestBottle, type TestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { watch, type Watched } from "../../lib/supervise/testdata/process.ts";
import { tsArgv } from "../../lib/supervise/testdata/ts-argv.ts";
import { until } from "../../tests/support/until.ts";

/** Long enough for a decision by the real tool (a Node process to start) to land within a
 * call's wait on a loaded machine: one waited out in full is the test's only cost. */
const WAIT_S = 10;

let bottle: TestBottle;
let daemon: Watched;
let client: Client;
let url: string;

async function call(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

function text(r: CallToolResult): string {
  return r.content.map((c) => (c.type === "text" ? c.text : "")).join("");
}

/** The pending request matching `pred` once the daemon has filed it. */
async function filed(pred: (r: QueueRequest) => boolean): Promise<QueueRequest> {
  let r: QueueRequest | undefined;
  await until("the daemon file the request", async () => (r = (await listRequests(bottle.queueDir)).find((x) => x.status === "pending" && pred(x))) !== undefined, { everyMs: 50 });
  return r!;
}

async function hosts() {
  return FirewallPolicy.parse(JSON.parse(await readFile(bottle.policyFile, "utf8"))).hosts;
}

describe("supervise daemon", () => {
  before(async () => {
    bottle = await makeTestBottle();
    daemon = watch(
      tsArgv("sidecar-image/supervise/main.ts", [
        "--listen", "127.0.0.1:0", "--queue", bottle.queueDir, "--slug", bottle.slug, "--wait", String(WAIT_S), "--poll", "100",
        "--allowed-host", "supervise", "--allowed-host", "127.0.0.17",
      ]),
    );
    const m = await daemon.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+\/mcp)/, 20_000);
    url = m[1]!;
    client = new Client({ name: "supervise-test", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  });

  after(async () => {
    await client?.close();
    const code = await daemon?.stop();
    await bottle?.remove();
    assert.equal(daemon.lines.at(-1), "stopped", `supervise shuts down cleanly on SIGTERM; output:\n${daemon.lines.join("\n")}`);
    assert.equal(code, 0);
  });

  test("the session lists exactly the three supervise tools", async () => {
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ["ask_operator", "check_request", "request_host_access"]);
  });

  test("request_host_access waits for the operator and returns approved; the policy then lists the host", async () => {
    const pendingCall = call("request_host_access", { host: "Docs.Example.org", reason: "read the API docs" });
    const req = await filed((r) => r.host === "docs.example.org");
    assert.equal(req.reason, "read the API docs");
    let restarts = 0;
    await approveRequest({ queueDir: bottle.queueDir, policyFile: bottle.policyFile, bottleDir: bottle.plan.files.dir, reloadFirewall: async () => void restarts++ }, req.id);
    const r = await pendingCall;
    assert.deepEqual(r.structuredContent, { id: req.id, kind: "host", status: "approved", host: "docs.example.org", answer: null });
    assert.match(text(r), /^Approved: docs\.example\.org/);
    assert.equal(restarts, 1);
    assert.deepEqual((await hosts()).find((h) => h.host === "docs.example.org"), { host: "docs.example.org", tlsPassthrough: false, routed: false });
  });

  test("an undecided request answers pending with its id; a retry joins it; bb-supervise approves it; check_request sees approved", async () => {
    const t0 = Date.now();
    const first = await call("request_host_access", { host: "pkg.example.net", reason: "install deps", tls_passthrough: true });
    assert.ok(Date.now() - t0 >= WAIT_S * 1000 - 100, "the call waited for the operator first");
    const sc = first.structuredContent as { id: string; status: string };
    assert.equal(sc.status, "pending");
    assert.match(text(first), new RegExp(`check_request with id "${sc.id}"`));

    // The real tool, as the operator runs it, against the plan file in the state dir.
    const listed = await run(tsArgv("tools/bb-supervise/main.ts", ["--state-dir", bottle.stateRoot, "--slug", bottle.slug, "list", "--json"]));
    const pending = JSON.parse(listed.stdout) as QueueRequest[];
    assert.deepEqual(pending.filter((r) => r.host === "pkg.example.net").map((r) => r.id), [sc.id]);
    // The retry waits while the tool (a process to start) approves: only that is in its window.
    const retry = call("request_host_access", { host: "pkg.example.net", reason: "install deps, again", tls_passthrough: true });
    await run(tsArgv("tools/bb-supervise/main.ts", ["--plan", bottle.planFile, "approve", sc.id]));

    assert.equal(((await retry).structuredContent as { status: string }).status, "approved");
    const all = await listRequests(bottle.queueDir);
    assert.deepEqual(all.filter((r) => r.host === "pkg.example.net").map((r) => r.id), [sc.id], "the retry filed a second request instead of joining the first");
    const checked = await call("check_request", { id: sc.id });
    assert.deepEqual(checked.structuredContent, { id: sc.id, kind: "host", status: "approved", host: "pkg.example.net", answer: null });
    assert.deepEqual((await hosts()).find((h) => h.host === "pkg.example.net"), { host: "pkg.example.net", tlsPassthrough: true, routed: false });
  });

  test("a denied host request returns denied with the operator's reason and leaves the policy alone", async () => {
    const before = await hosts();
    const pendingCall = call("request_host_access", { host: "paste.example.com", reason: "share logs" });
    const req = await filed((r) => r.host === "paste.example.com");
    await denyRequest({ queueDir: bottle.queueDir }, req.id, "no paste sites");
    const r = await pendingCall;
    assert.equal(r.isError, undefined);
    assert.deepEqual(r.structuredContent, { id: req.id, kind: "host", status: "denied", host: "paste.example.com", answer: "no paste sites" });
    assert.match(text(r), /no paste sites/);
    assert.deepEqual(await hosts(), before);
  });

  test("ask_operator returns the operator's answer text", async () => {
    const pendingCall = call("ask_operator", { question: "Which branch should I push to?" });
    const req = await filed((r) => r.kind === "question" && r.question === "Which branch should I push to?");
    await answerRequest({ queueDir: bottle.queueDir }, req.id, "feature/x, please");
    const r = await pendingCall;
    assert.equal(text(r), "The operator answered: feature/x, please");
    assert.deepEqual(r.structuredContent, { id: req.id, kind: "question", status: "approved", host: null, answer: "feature/x, please" });
  });

  test("check_request on an unknown id and request_host_access with a URL are tool errors that file nothing", async () => {
    const count = (await readdir(bottle.queueDir)).length;
    const unknown = await call("check_request", { id: "ffffffff" });
    assert.equal(unknown.isError, true);
    assert.match(text(unknown), /No request with id "ffffffff"/);
    const url = await call("request_host_access", { host: "https://evil.example.com/x", reason: "r" });
    assert.equal(url.isError, true);
    assert.match(text(url), /not a host name/);
    assert.equal((await readdir(bottle.queueDir)).length, count);
  });

  test("host names that would not say where they lead (wildcards over a TLD, numeric forms, embedded newlines, IPv6, over-long) are tool errors that file nothing", async () => {
    const count = (await readdir(bottle.queueDir)).length;
    for (const host of ["*", "0x7f.1", "2130706433", "127.1", "docs.example.org\nevil.example.com", "[::1]", "::1", "a b.example.org", `${"a.".repeat(126)}org`, "*.*.example.org"]) {
      const r = await call("request_host_access", { host, reason: "r" });
      assert.equal(r.isError, true, host);
      assert.match(text(r), /is not a host name|must contain at most|Input validation error/, host);
    }
    assert.equal((await readdir(bottle.queueDir)).length, count);
  });

  test("a wildcard over a public suffix (*.com, *.co.uk, *.github.io, *.s3.amazonaws.com) or over a parent of one (*.amazonaws.com, *.on.aws) is a tool error that names the suffix and files nothing", async () => {
    const count = (await readdir(bottle.queueDir)).length;
    for (const [host, suffix] of [["*.com", "com"], ["*.CO.UK.", "co.uk"], ["*.github.io", "github.io"], ["*.s3.amazonaws.com", "s3.amazonaws.com"]] as const) {
      const r = await call("request_host_access", { host, reason: "r" });
      assert.equal(r.isError, true, host);
      assert.match(text(r), new RegExp(`every site anyone registers under ${suffix.replaceAll(".", "\\.")}.*\\*\\.NAME\\.${suffix.replaceAll(".", "\\.")}`), host);
    }
    // A wildcard over a parent of public suffixes opens them all: every S3 bucket, every
    // Lambda URL, every Azure storage account, every Cloud Storage bucket.
    for (const [host, beneath] of [["*.amazonaws.com", "s3.amazonaws.com"], ["*.on.aws", "on.aws"], ["*.core.windows.net", "core.windows.net"], ["*.windows.net", "windows.net"], ["*.storage.googleapis.com", "storage.googleapis.com"]] as const) {
      const r = await call("request_host_access", { host, reason: "use the SDK" });
      assert.equal(r.isError, true, host);
      assert.match(text(r), /^".*" would open every site anyone registers under .*, not one organisation's: ask for the host itself, or for \*\.NAME\./, host);
      assert.ok(text(r).includes(beneath), `${host}: ${text(r)}`);
    }
    assert.equal((await readdir(bottle.queueDir)).length, count);
    // One organisation's subdomains under such a suffix are an ordinary request.
    const ok = call("request_host_access", { host: "*.myorg.github.io", reason: "r" });
    const req = await filed((r) => r.host === "*.myorg.github.io");
    await denyRequest({ queueDir: bottle.queueDir }, req.id, "not now");
    assert.equal(((await ok).structuredContent as { status: string }).status, "denied");
  });

  test("only a Host the agent uses is answered, and nothing with an Origin: a DNS-rebound web page gets 403 and files nothing", async () => {
    const port = Number(new URL(url).port);
    /** One request as a browser or the agent would send it, Host and Origin as given. */
    const send = (path: string, headers: Record<string, string>, body?: unknown) =>
      new Promise<{ status: number; session: string | undefined; text: string }>((resolve, reject) => {
        const method = body === undefined ? "GET" : "POST";
        const req = httpRequest({ host: "127.0.0.1", port, path, method, headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers } }, (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (text += c));
          res.on("end", () => resolve({ status: res.statusCode!, session: res.headers["mcp-session-id"] as string | undefined, text }));
        });
        req.on("error", reject);
        req.end(body === undefined ? undefined : JSON.stringify(body));
      });
    const init = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "page", version: "1" } } };
    const count = (await readdir(bottle.queueDir)).length;

    for (const host of [`rebind.attacker.example:${port}`, `localhost:${port}`, `127.0.0.2:${port}`, "supervise.attacker.example:9100"]) {
      const r = await send("/mcp", { host }, init);
      assert.equal(r.status, 403, host);
      assert.equal(r.session, undefined, host);
      assert.match(r.text, /is not how this bottle's agent reaches supervise/, host);
      assert.equal((await send("/healthz", { host })).status, 403, host);
    }
    const page = await send("/mcp", { host: `127.0.0.1:${port}`, origin: `http://rebind.attacker.example:${port}` }, init);
    assert.equal(page.status, 403);
    assert.match(page.text, /requests from a web page \(with an Origin header\) are not answered/);
    // A session opened by the agent is no way in for a page either.
    const sid = (client.transport as StreamableHTTPClientTransport).sessionId!;
    const call = { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "request_host_access", arguments: { host: "paste.attacker.example", reason: "r" } } };
    const inSession = { "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" };
    assert.equal((await send("/mcp", { ...inSession, host: `rebind.attacker.example:${port}` }, call)).status, 403);
    assert.equal((await send("/mcp", { ...inSession, host: `127.0.0.1:${port}`, origin: "null" }, call)).status, 403);
    assert.equal((await readdir(bottle.queueDir)).length, count, "nothing was filed");

    // The names given with --allowed-host (any port: docker picks the published one) and
    // the --listen address.
    for (const host of ["supervise:9100", "127.0.0.17:54321", `127.0.0.1:${port}`, "SUPERVISE:9100"]) {
      const r = await send("/mcp", { host }, init);
      assert.equal(r.status, 200, host);
      assert.ok(r.session, host);
    }
  });

  test("a request without a session id is refused and /healthz answers", async () => {
    const bad = await fetch(url, { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }) });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    const gone = await fetch(url, { method: "POST", headers: { "content-type": "application/json", "mcp-session-id": "nope", accept: "application/json, text/event-stream" }, body: "{}" });
    assert.equal(gone.status, 404);
    await gone.body?.cancel();
    const health = await fetch(new URL("/healthz", url));
    assert.equal(await health.text(), "ok\n");
  });
});
