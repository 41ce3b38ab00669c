// supervise as a real process with its default limits, flooded over raw sockets on
// loopback as an agent could: what it holds stays bounded, and each refusal says so.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { makeTestBottle, type TestBottle } from "../../lib/supervise/testdata/bottle.ts";
import { watch, type Watched } from "../../lib/supervise/testdata/process.ts";
import { tsArgv } from "../../lib/supervise/testdata/ts-argv.ts";
import { MAX_BODY_BYTES, MAX_CONNECTIONS, MAX_REQUESTS, MAX_SESSIONS } from "./server.ts";
import { INIT, rawRequest } from "./testdata/raw-http.ts";

let bottle: TestBottle;
let daemon: Watched;
let port: number;

/** The status a fresh initialize gets once it is not refused for room (retried: the
 * daemon sees the closes that make room when it sees them); 0 if it never is. */
async function answered(t: Parameters<typeof rawRequest>[0]): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const body = JSON.stringify(INIT);
    const r = rawRequest(t, port, { "content-length": Buffer.byteLength(body) }, body);
    const status = await r.status().catch(() => 0);
    r.socket.destroy();
    if (status !== 0 && status !== 503) return status;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return 0;
}

describe("supervise daemon limits", () => {
  before(async () => {
    bottle = await makeTestBottle();
    daemon = watch(tsArgv("sidecar-image/supervise/main.ts", ["--listen", "127.0.0.1:0", "--queue", bottle.queueDir, "--slug", bottle.slug, "--wait", "30"]));
    port = Number((await daemon.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\/mcp/, 20_000))[1]);
  });

  after(async () => {
    const code = await daemon?.stop();
    await bottle?.remove();
    assert.equal(code, 0, `supervise shuts down cleanly; output:\n${daemon.lines.join("\n")}`);
  });

  test(`a body over ${MAX_BODY_BYTES / 1024} KiB is refused 413 at once, whether Content-Length says so or the body runs past it; one under it is read`, async (t) => {
    const said = rawRequest(t, port, { "content-length": MAX_BODY_BYTES + 1 }, "{");
    assert.equal(await said.status(), 413);
    assert.match(await said.closed(), /must not exceed 262144 bytes/);
    const sent = rawRequest(t, port, { "transfer-encoding": "chunked" }, `${(MAX_BODY_BYTES + 1).toString(16)}\r\n${" ".repeat(MAX_BODY_BYTES + 1)}\r\n`);
    assert.equal(await sent.status(), 413);
    const body = JSON.stringify(INIT) + " ".repeat(200 * 1024);
    const fits = rawRequest(t, port, { "content-length": Buffer.byteLength(body) }, body);
    assert.equal(await fits.status(), 200);
  });

  test(`past ${MAX_REQUESTS} requests in flight the next is answered 503 and closed before its body is read; one that ends frees its place`, async (t) => {
    // Initialize bodies that never finish: each request stays in the daemon, reading.
    const held = Array.from({ length: MAX_REQUESTS }, () => rawRequest(t, port, { "content-length": 1000, expect: "100-continue" }, "{"));
    for (const r of held) await r.taken();
    const refused = rawRequest(t, port, { "content-length": 1000, expect: "100-continue" }, "{");
    assert.equal(await refused.status(), 503);
    assert.match(await refused.closed(), /answering 64 requests already \(at most 64 at once\)/);
    held[0]!.socket.destroy();
    assert.equal(await answered(t), 200);
    for (const r of held) r.socket.destroy();
  });

  test(`past ${MAX_CONNECTIONS} connections a new one is closed unanswered; closing them lets new ones in`, async (t) => {
    const open: Socket[] = [];
    t.after(() => open.forEach((s) => s.destroy()));
    for (let i = 0; i < MAX_CONNECTIONS; i++) {
      const s = connect(port, "127.0.0.1");
      s.on("error", () => {});
      open.push(s);
      await new Promise((resolve) => s.once("connect", resolve));
    }
    // Accepted in the order they came: this one finds every place taken.
    const extra = rawRequest(t, port, { "content-length": 2 }, "{}");
    assert.equal(await extra.closed(), "");
    open.forEach((s) => s.destroy());
    assert.equal(await answered(t), 200);
  });

  test(`sessions started in a loop past the ${MAX_SESSIONS} kept: the first one closed for room is logged, the rest counted, not a line each`, async (t) => {
    const from = daemon.lines.length;
    for (let i = 0; i < MAX_SESSIONS + 300; i++) assert.equal(await answered(t), 200);
    const closed = daemon.lines.slice(from).filter((l) => /sessions are open and a new one started/.test(l));
    assert.ok(closed.length <= 1, `${closed.length} lines:\n${closed.slice(0, 5).join("\n")}`);
  });
});
