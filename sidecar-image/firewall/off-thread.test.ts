// Large bodies are scanned on the scan worker (a real worker thread): the event loop runs
// meanwhile, the worker finds what the firewall's own scanner finds, and a worker that
// cannot run leaves the scan to the firewall's thread, never skipped.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { test } from "node:test";
import zlib from "node:zlib";
import { createLogger } from "../../lib/log.ts";
import type { FirewallPolicy } from "../../lib/sidecar-config.ts";
import { inspectBody } from "./inspect.ts";
import { createOffThreadScanner, OFF_THREAD_BYTES } from "./off-thread.ts";
import { compilePolicy } from "./policy.ts";

const GITHUB = "ghp_" + "R8x2mQ4vT7nK1pL9sW3eY6uI0oA5dF2gH8jZ";
const SECRET = "hunter2-correct-horse-battery";
const policyOf = (disabled: FirewallPolicy["dlp"]["disabled"] = []) =>
  compilePolicy({ version: 1, slug: "t", hosts: [], dlp: { disabled, sensitive: [{ name: "DB_PASSWORD", slot: "BB_SENSITIVE_0" }] } }, { BB_SENSITIVE_0: SECRET });

/** Ordinary JSON, about `bytes` long, with `tail` at its end. */
function bigJson(bytes: number, tail = ""): Buffer {
  const row = JSON.stringify({ id: 123456, name: "a file name", text: "lorem ipsum dolor sit amet, consectetur adipiscing elit" }) + ",";
  return Buffer.from(`[${row.repeat(Math.ceil(bytes / row.length))}${JSON.stringify(tail)}]`);
}

function quietLog() {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: "info", write: (t) => void lines.push(t) }) };
}

test("a large body is scanned while the event loop goes on serving; a small one on the spot", async (t) => {
  const { log, lines } = quietLog();
  const offThread = createOffThreadScanner(log);
  t.after(() => offThread.close());
  const policy = policyOf();
  let ticked = false;
  const tick = () => new Promise<void>((r) => setImmediate(() => ((ticked = true), r())));

  const big = bigJson(8 * OFF_THREAD_BYTES);
  const [verdict] = await Promise.all([inspectBody(policy, big, {}, { offThread }).then((v) => [v, ticked] as const), tick()]);
  assert.deepEqual(verdict, [null, true], "the event loop did not run while the large body was scanned");

  ticked = false;
  const small = bigJson(OFF_THREAD_BYTES / 4);
  const [smallVerdict] = await Promise.all([inspectBody(policy, small, {}, { offThread }).then((v) => [v, ticked] as const), tick()]);
  assert.deepEqual(smallVerdict, [null, false], "a small body went to the worker");
  assert.deepEqual(lines, [], "the worker was not used");
});

test("the worker blocks what the firewall's own scan blocks: known formats, sensitive values, what follows a deflate stream; disabled detectors stay off", async (t) => {
  const { log, lines } = quietLog();
  const offThread = createOffThreadScanner(log);
  t.after(() => offThread.close());
  const size = 2 * OFF_THREAD_BYTES;

  const github = await inspectBody(policyOf(), bigJson(size, `token ${GITHUB}`), {}, { offThread });
  assert.match(github?.reason ?? "", /^detector github matched in body \(GitHub/);
  const sensitive = await inspectBody(policyOf(), bigJson(size, Buffer.from(`pw:${SECRET}`).toString("base64")), {}, { offThread });
  assert.match(sensitive?.reason ?? "", /^detector sensitive_env matched in body \(value of sensitive env DB_PASSWORD/);
  assert.ok(!sensitive!.reason.includes(SECRET));
  // Inflate stops at the end of its stream; what follows it is refused, not guessed at.
  const trailing = Buffer.concat([zlib.deflateSync(bigJson(size)), Buffer.from(` ${GITHUB}`)]);
  assert.match((await inspectBody(policyOf(), trailing, { "content-encoding": "deflate" }, { offThread }))?.reason ?? "", /^request body has 41 bytes after its deflate data/);
  // Switched off: the same body passes (the worker takes the policy each scan carries).
  assert.equal(await inspectBody(policyOf(["github"]), bigJson(size, `token ${GITHUB}`), {}, { offThread }), null);
  assert.deepEqual(lines, [], "the worker was not used");
});

test("a scan worker that cannot run: the large body is scanned on the firewall's thread, with a warning", async (t) => {
  const { log, lines } = quietLog();
  const offThread = createOffThreadScanner(log, new URL("./no-such-worker.js", import.meta.url));
  t.after(() => offThread.close());
  const verdict = await inspectBody(policyOf(), bigJson(2 * OFF_THREAD_BYTES, `token ${GITHUB}`), {}, { offThread });
  assert.match(verdict?.reason ?? "", /^detector github matched in body/);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^warning: scanning a large body or message on the firewall's own thread: the scan worker failed/);
});
