// The WebSocket frame relay on its own, over real socket pairs: the protocol errors the
// firewall refuses (and the close code it sends), and a message over the limit refused
// from its header alone.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { Duplex } from "node:stream";
import { test, type TestContext } from "node:test";
import { parseWsFrame, wsFrame } from "../../tests/support/ws-frame.mjs";
import { createBodyBudget } from "./body-budget.ts";
import { closeFrame, MAX_FRAGMENTS, OVER_BUDGET, parseClientFrame, relayWebSocket, unmask, type WsBlock, type WsScanOptions } from "./websocket.ts";

/** A connected pair of real loopback sockets, destroyed after test `t` however it ends (a
 * socket left open by a failed assertion keeps the test runner from exiting); the second
 * allows a half-open connection when asked, as the firewall's own do (node's HTTP server
 * makes them so). */
async function pair(t: TestContext, o: { allowHalfOpen?: boolean } = {}): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer({ allowHalfOpen: o.allowHalfOpen ?? false });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
  const a = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
  const b = await accepted;
  server.close();
  t.after(() => {
    a.destroy();
    b.destroy();
  });
  return [a, b];
}

/** Resolves once `ok()` holds; after 10 s it resolves anyway, and the assertions say what never came. */
async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
}

const bytes = (chunks: Buffer[]) => chunks.reduce((n, c) => n + c.length, 0);

/** Relay `frames` from an agent socket to an upstream socket; what each side ends up with. */
const scanSecret = (p: Buffer) => (p.includes("SECRET") ? "found SECRET" : null);

async function through(t: TestContext, frames: Buffer[], maxMessageBytes = 1 << 20, scan: WsScanOptions["scan"] = scanSecret, budget = createBodyBudget()) {
  const [agent, clientSide] = await pair(t);
  const [upstreamSide, upstream] = await pair(t);
  const blocks: WsBlock[] = [];
  const overBudget: WsBlock[] = [];
  relayWebSocket(clientSide, upstreamSide, Buffer.alloc(0), { maxMessageBytes, scan, budget, onBlock: (b) => blocks.push(b), onOverBudget: (b) => overBudget.push(b) });
  const got: Buffer[] = [];
  upstream.on("data", (c: Buffer) => got.push(c));
  upstream.on("error", () => {});
  const back: Buffer[] = [];
  agent.on("data", (c: Buffer) => back.push(c));
  const closed = new Set<net.Socket>();
  for (const side of [agent, upstream]) side.once("close", () => closed.add(side));
  for (const f of frames) agent.write(f);
  // Until the relay has settled it: forwarded every byte, or refused (it then ends the
  // agent's socket after its close frame and destroys the upstream's, so that socket has
  // whatever was forwarded before). A fixed wait lost this race on a loaded machine.
  await until(() => bytes(got) >= bytes(frames) || closed.size === 2);
  agent.destroy();
  upstream.destroy();
  const close = parseWsFrame(Buffer.concat(back));
  return { upstreamGot: Buffer.concat(got), blocks, overBudget, close: close && close.opcode === 8 ? close.payload.readUInt16BE(0) : null };
}

test("clean frames reach the upstream byte for byte", async (t) => {
  const frames = [wsFrame("hello", true), wsFrame("b".repeat(70_000), true, { opcode: 2 })];
  const r = await through(t, frames);
  assert.deepEqual(r.upstreamGot, Buffer.concat(frames));
  assert.deepEqual(r.blocks, []);
});

test("protocol errors are refused with 1002 and nothing of the bad frame is forwarded", async (t) => {
  const cases: [string, Buffer[]][] = [
    ["a control frame over 125 bytes", [wsFrame("p".repeat(126), true, { opcode: 9 })]],
    ["a fragmented control frame", [wsFrame("ping", true, { opcode: 9, fin: false })]],
    ["a continuation with no message", [wsFrame("tail", true, { opcode: 0 })]],
    ["a new message before the last ended", [wsFrame("one", true, { fin: false }), wsFrame("two", true)]],
    ["an unknown opcode", [wsFrame("x", true, { opcode: 3 })]],
  ];
  for (const [name, frames] of cases) {
    const r = await through(t, frames);
    assert.equal(r.close, 1002, name);
    assert.equal(r.upstreamGot.length, 0, `${name}: bytes reached the upstream`);
    assert.equal(r.blocks.length, 1, name);
  }
});

test("a message over the limit is refused with 1009 from its header, before its payload arrives", async (t) => {
  const header = wsFrame("z".repeat(70_000), true).subarray(0, 14); // 64-bit length + mask, no payload
  const r = await through(t, [header], 65_536);
  assert.equal(r.close, 1009);
  assert.match(r.blocks[0]!.reason, /too large to scan/);
  // Fragments count together: two halves each under the limit, over it combined.
  const halves = await through(t, [wsFrame("y".repeat(40_000), true, { fin: false }), wsFrame("y".repeat(40_000), true, { opcode: 0 })], 65_536);
  assert.equal(halves.close, 1009);
  assert.equal(halves.upstreamGot.length, 0);
});

test("empty continuation frames cannot pile up: the fragment count is capped, and framing counts toward the limit", async (t) => {
  const empty = wsFrame("", true, { opcode: 0, fin: false });
  const many = await through(t, [wsFrame("a", true, { fin: false }), Buffer.concat(Array.from({ length: MAX_FRAGMENTS + 1 }, () => empty))]);
  assert.equal(many.close, 1009);
  assert.match(many.blocks[0]!.reason, new RegExp(`more than ${MAX_FRAGMENTS} fragments`));
  assert.equal(many.upstreamGot.length, 0);
  // 1000 empty fragments of 6 bytes are over a 4 KiB limit though they carry no payload.
  const framed = await through(t, [wsFrame("a", true, { fin: false }), Buffer.concat(Array.from({ length: 1000 }, () => empty))], 4096);
  assert.equal(framed.close, 1009);
});

test("parseClientFrame waits for a whole frame and unmasks it; closeFrame caps its reason at the control-frame limit", () => {
  const f = wsFrame("masked text", true);
  assert.deepEqual(parseClientFrame(f.subarray(0, 5), 1024), { need: f.length });
  const whole = parseClientFrame(f, 1024);
  assert.ok("frame" in whole);
  assert.equal(whole.frame.payload.toString(), "masked text");
  assert.equal(whole.used, f.length);
  const close = closeFrame({ code: 1008, reason: "r".repeat(300) });
  assert.equal(close.length, 2 + 125);
  assert.equal(close.readUInt16BE(2), 1008);
});

test("a big frame arriving in small pieces is joined once, not once per piece", async () => {
  const frame = wsFrame("q".repeat(1 << 20), true, { opcode: 2 });
  const got: Buffer[] = [];
  const client = new Duplex({ read() {}, write: (_c, _e, cb) => cb() });
  const upstream = new Duplex({ read() {}, write: (c: Buffer, _e, cb) => (got.push(c), cb()) });
  let copied = 0;
  const concat = Buffer.concat;
  Buffer.concat = ((list: readonly Uint8Array[], total?: number) => {
    copied += total ?? list.reduce((n, b) => n + b.length, 0);
    return concat(list, total);
  }) as typeof Buffer.concat;
  try {
    relayWebSocket(client, upstream, Buffer.alloc(0), { maxMessageBytes: 4 << 20, scan: () => null, budget: createBodyBudget(), onBlock: () => assert.fail("blocked"), onOverBudget: () => assert.fail("over budget") });
    for (let at = 0; at < frame.length; at += 1024) client.push(frame.subarray(at, at + 1024));
    await new Promise((r) => setImmediate(r));
  } finally {
    Buffer.concat = concat;
  }
  assert.deepEqual(Buffer.concat(got), frame);
  // Joining on every piece copied ~512 MiB here (the held bytes again per KiB).
  assert.ok(copied < 3 * frame.length, `${(copied / 1048576).toFixed(0)} MiB copied for a 1 MiB frame`);
});

/** A scan that answers for "LATER" messages only once `release` is called, the others at once. */
function laterScan() {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const asked: string[] = [];
  const scan = (p: Buffer) => {
    asked.push(p.toString());
    return p.includes("LATER") ? released.then(() => scanSecret(p)) : scanSecret(p);
  };
  return { scan, asked, release };
}

test("a scan that answers later holds what follows: nothing after it is read or forwarded until the verdict, then all of it in order", async (t) => {
  const [agent, clientSide] = await pair(t);
  const [upstreamSide, upstream] = await pair(t);
  const { scan, asked, release } = laterScan();
  const blocks: WsBlock[] = [];
  relayWebSocket(clientSide, upstreamSide, Buffer.alloc(0), { maxMessageBytes: 1 << 20, scan, budget: createBodyBudget(), onBlock: (b) => blocks.push(b), onOverBudget: (b) => blocks.push(b) });
  const got: Buffer[] = [];
  upstream.on("data", (c: Buffer) => got.push(c));
  const frames = [wsFrame("first", true), wsFrame("LATER, a big one", true), wsFrame("ping", true, { opcode: 9 }), wsFrame("after", true)];
  agent.write(Buffer.concat(frames));
  await until(() => asked.length >= 2 && bytes(got) >= frames[0]!.length);
  await new Promise((r) => setTimeout(r, 100)); // room for a relay that does not hold to forward and parse what follows
  assert.deepEqual(Buffer.concat(got), frames[0], "a frame after the pending message was forwarded before its verdict");
  assert.deepEqual(asked, ["first", "LATER, a big one"], "frames after the pending message were parsed before its verdict");
  assert.equal(clientSide.isPaused(), true, "the agent's socket was not paused while a scan was pending");
  release();
  await until(() => bytes(got) >= bytes(frames));
  assert.deepEqual(Buffer.concat(got), Buffer.concat(frames));
  assert.equal(clientSide.isPaused(), false);
  assert.deepEqual(blocks, []);
});

test("a scan that answers later with a block: that message and everything after it never reach the upstream", async (t) => {
  const { scan, release } = laterScan();
  setTimeout(release, 50);
  const r = await through(t, [wsFrame("ok", true), wsFrame("LATER SECRET", true, { fin: false }), wsFrame(" tail", true, { opcode: 0 }), wsFrame("after", true)], 1 << 20, scan);
  assert.deepEqual(r.upstreamGot, wsFrame("ok", true));
  assert.equal(r.close, 1008);
  assert.deepEqual(r.blocks, [{ code: 1008, reason: "found SECRET" }]);
});

test("a scan that fails is a block, never a pass", async (t) => {
  const r = await through(t, [wsFrame("anything", true)], 1 << 20, () => Promise.reject(new Error("worker gone")));
  assert.equal(r.close, 1008);
  assert.equal(r.upstreamGot.length, 0);
  assert.match(r.blocks[0]!.reason, /could not be scanned \(worker gone\)/);
});

test("unmask undoes the mask byte for byte at every length and alignment, and leaves its input as it was", () => {
  const mask = Buffer.from([0x9a, 0x01, 0xff, 0x5c]);
  const source = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 11) & 0xff));
  for (let offset = 0; offset < 5; offset++) {
    for (const len of [0, 1, 3, 4, 15, 16, 17, 63, 64, 65, 255]) {
      const masked = source.subarray(offset, offset + len); // views at every alignment
      const before = Buffer.from(masked);
      const expected = Buffer.from(masked.map((b, i) => b ^ mask[i & 3]!));
      assert.deepEqual(unmask(masked, mask), expected, `offset ${offset}, length ${len}`);
      assert.deepEqual(masked, before, "the input was changed");
    }
  }
});

test("a message past the body budget closes with 1013, not as a block: nothing of it is forwarded, and the budget is whole after", async (t) => {
  const budget = createBodyBudget(64 * 1024);
  // 40 000 bytes fit as they arrive (and a small message before it passes), not with their unmasked copy.
  const r = await through(t, [wsFrame("small", true), wsFrame("m".repeat(40_000), true, { opcode: 2 })], 1 << 20, scanSecret, budget);
  assert.equal(r.close, 1013);
  assert.deepEqual(r.upstreamGot, wsFrame("small", true));
  assert.deepEqual(r.blocks, []);
  assert.deepEqual(r.overBudget, [OVER_BUDGET]);
  await until(() => budget.heldBytes() === 0);
  assert.equal(budget.heldBytes(), 0);
  // Run out of as the bytes arrive, before the frame is whole.
  const arriving = await through(t, [wsFrame("a".repeat(70_000), true, { opcode: 2 })], 1 << 20, scanSecret, budget);
  assert.equal(arriving.close, 1013);
  assert.equal(arriving.upstreamGot.length, 0);
  await until(() => budget.heldBytes() === 0);
  assert.equal(budget.heldBytes(), 0);
});

/** An agent's socket relayed to an upstream's with `opts`, closed after the test whatever
 * becomes of it; what reaches the upstream is in `got`. */
async function relayed(t: TestContext, opts: Omit<WsScanOptions, "onBlock" | "onOverBudget">, o: { allowHalfOpen?: boolean } = {}) {
  const [agent, clientSide] = await pair(t, o);
  const [upstreamSide, upstream] = await pair(t);
  relayWebSocket(clientSide, upstreamSide, Buffer.alloc(0), { ...opts, onBlock: () => {}, onOverBudget: () => {} });
  const got: Buffer[] = [];
  upstream.on("data", (c: Buffer) => got.push(c));
  upstream.on("error", () => {});
  return { agent, clientSide, upstream, got };
}

test("a message is charged while it waits on its scan, the worker's copy with it, and given back once forwarded", async (t) => {
  const budget = createBodyBudget();
  const { scan, release } = laterScan();
  // As the firewall's scan does for the worker's copy.
  const copying: WsScanOptions["scan"] = (p, _what, charge) => (charge.take(p.length) ? scan(p) : OVER_BUDGET);
  const { agent, got } = await relayed(t, { maxMessageBytes: 1 << 20, budget, scan: copying });
  const frame = wsFrame(`LATER ${"x".repeat(10_000)}`, true, { opcode: 2 });
  agent.write(frame);
  const payload = frame.length - 8; // 16-bit length and mask
  await until(() => budget.heldBytes() === frame.length + 2 * payload);
  assert.equal(budget.heldBytes(), frame.length + 2 * payload, "the frame, its unmasked payload and the scan's copy");
  release();
  await until(() => bytes(got) >= frame.length);
  assert.deepEqual(Buffer.concat(got), frame);
  assert.equal(budget.heldBytes(), 0);
});

test("a half-sent message gives its bytes back when the agent goes; one waiting on its scan keeps them until the verdict", async (t) => {
  const budget = createBodyBudget();
  const { scan, release } = laterScan();
  const half = await relayed(t, { maxMessageBytes: 1 << 20, budget, scan });
  half.agent.write(wsFrame("h".repeat(50_000), true, { opcode: 2 }).subarray(0, 30_000));
  await until(() => budget.heldBytes() === 30_000);
  assert.equal(budget.heldBytes(), 30_000);
  half.agent.destroy();
  await until(() => budget.heldBytes() === 0);
  assert.equal(budget.heldBytes(), 0, "the half-sent frame kept its charge after its connection closed");

  const waiting = await relayed(t, { maxMessageBytes: 1 << 20, budget, scan });
  waiting.agent.write(wsFrame(`LATER ${"w".repeat(20_000)}`, true));
  await until(() => budget.heldBytes() > 0 && waiting.clientSide.isPaused());
  const charged = budget.heldBytes();
  waiting.agent.destroy();
  await until(() => waiting.clientSide.destroyed);
  assert.equal(budget.heldBytes(), charged, "given back before its scan answered");
  release();
  await until(() => budget.heldBytes() === 0);
  assert.equal(budget.heldBytes(), 0);
});

test("an agent that half-closes its socket part way through a message gives its bytes back, and its end reaches the upstream", async (t) => {
  const budget = createBodyBudget();
  const { agent, upstream, got } = await relayed(t, { maxMessageBytes: 1 << 20, budget, scan: scanSecret }, { allowHalfOpen: true });
  let upstreamEnded = false;
  upstream.on("end", () => (upstreamEnded = true));
  const whole = wsFrame("sent whole", true);
  agent.write(Buffer.concat([whole, wsFrame("h".repeat(50_000), true, { opcode: 2 }).subarray(0, 30_000)]));
  await until(() => budget.heldBytes() > 0 && bytes(got) >= whole.length);
  agent.end();
  await until(() => upstreamEnded && budget.heldBytes() === 0);
  assert.equal(budget.heldBytes(), 0, "the half-sent frame kept its charge after the agent's last byte");
  assert.ok(upstreamEnded, "the agent's end did not reach the upstream");
  assert.deepEqual(Buffer.concat(got), whole);
});

test("after its close frame the relay reads the agent's frames only for the agent's own close frame, which ends the connection at once; none of them reaches the upstream", async (t) => {
  // A minute before the linger would give up by itself: only the agent's close frame ends it sooner.
  const linger = { quietMs: 60_000, totalMs: 60_000, maxBytes: 64 << 20 };
  const agentClose = wsFrame(Buffer.from([0x03, 0xf0]), true, { opcode: 8 }); // 1008, as it was sent
  const cases: [string, number, (agent: net.Socket, back: Buffer[]) => Promise<void>][] = [
    ["sent along with the refused message", 1008, async (agent) => void agent.write(Buffer.concat([wsFrame("SECRET", true), agentClose]))],
    // Refused from its header: the relay skips the rest of that frame by its length.
    ["behind a frame refused as too large", 1009, async (agent) => void agent.write(Buffer.concat([wsFrame("b".repeat(2 << 20), true, { opcode: 2 }), agentClose]))],
    [
      "sent after the firewall's close, behind more frames, a few bytes at a time",
      1008,
      async (agent, back) => {
        agent.write(wsFrame("SECRET", true));
        await until(() => bytes(back) > 0);
        const rest = Buffer.concat([wsFrame("more", true), wsFrame("m".repeat(70_000), true, { opcode: 2 }), agentClose]);
        let at = 0;
        for (; at < 200; at += 3) agent.write(rest.subarray(at, at + 3));
        agent.write(rest.subarray(at));
      },
    ],
  ];
  for (const [name, code, send] of cases) {
    const { agent, clientSide, got } = await relayed(t, { maxMessageBytes: 1 << 20, budget: createBodyBudget(), scan: scanSecret, linger }, { allowHalfOpen: true });
    agent.allowHalfOpen = true; // it ends only with its close frame, as a WebSocket client does
    const back: Buffer[] = [];
    agent.on("data", (c: Buffer) => back.push(c));
    const errors: string[] = [];
    agent.on("error", (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
    await send(agent, back);
    await until(() => clientSide.destroyed);
    // Its own close frame answered, it ends too; a relay that had not waited for it would have reset it.
    agent.end();
    await until(() => agent.destroyed);
    assert.deepEqual(errors, [], `${name}: the agent's connection failed`);
    assert.ok(clientSide.destroyed, `${name}: the relay still holds the connection after the agent's close frame`);
    const close = parseWsFrame(Buffer.concat(back));
    assert.equal(close?.opcode, 8, name);
    assert.equal(close.payload.readUInt16BE(0), code, name);
    assert.equal(bytes(got), 0, `${name}: a frame reached the upstream`);
  }
});
