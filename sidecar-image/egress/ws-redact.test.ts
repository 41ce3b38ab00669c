// The frame-aware WebSocket masker on its own: server frames in, in every chunking, and
// the reassembled messages checked with the tests' independent frame codec.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { test } from "node:test";
import { parseWsFrame, wsFrame } from "../../tests/support/ws-frame.mjs";
import { secretForms } from "./redact.ts";
import { WsRedactor } from "./ws-redact.ts";

const TOKEN = "real-upstream-token-Zq7Xw2Pv9Lk4";
const secrets = secretForms([TOKEN]);
const MASKED = "[egress-redacted]".repeat(2).slice(0, TOKEN.length);

/** Feed `wire` to a WsRedactor in pieces cut at `cuts`; the frames that come out. */
async function run(wire: Buffer, cuts: number[] = []): Promise<{ frames: { opcode: number; fin: boolean; payload: string }[]; error: Error | null }> {
  const r = new WsRedactor(secrets);
  const out: Buffer[] = [];
  r.on("data", (c: Buffer) => out.push(c));
  const error = new Promise<Error | null>((resolve) => {
    r.on("error", resolve);
    r.on("end", () => resolve(null));
  });
  let at = 0;
  for (const cut of [...cuts, wire.length]) {
    r.write(wire.subarray(at, cut));
    at = cut;
  }
  r.end();
  const err = await error;
  let buf = Buffer.concat(out);
  const frames = [];
  for (let f = parseWsFrame(buf); f; f = parseWsFrame(buf)) {
    frames.push({ opcode: f.opcode, fin: (buf[0]! & 0x80) !== 0, payload: f.payload.toString() });
    buf = buf.subarray(f.size);
  }
  assert.equal(buf.length, 0, "bytes left that are not a whole frame");
  return { frames, error: err };
}

test("a credential split by a fragment boundary is masked in the reassembled message, at every cut of the stream", async () => {
  const text = `hello, Bearer ${TOKEN}!`;
  for (let split = 1; split < text.length; split++) {
    const wire = Buffer.concat([wsFrame(text.slice(0, split), false, { fin: false }), wsFrame(text.slice(split), false, { opcode: 0 })]);
    for (const cuts of [[], [1], [wire.length - 3], [split + 1, split + 3]]) {
      const { frames, error } = await run(wire, cuts);
      assert.equal(error, null);
      const message = frames.map((f) => f.payload).join("");
      assert.ok(!message.includes(TOKEN), `split ${split}, cuts ${cuts}: ${message}`);
      assert.equal(message.length, text.length);
      assert.match(message, /^hello, Bearer \[egress-redacted\]/);
      assert.deepEqual(frames.map((f) => [f.opcode, f.fin]), [[1, false], [0, true]], "one frame out per frame in, opcodes and FIN kept");
    }
  }
});

test("control frames between fragments pass (masked), and large frames keep their lengths", async () => {
  const big = "x".repeat(70_000);
  const wire = Buffer.concat([
    wsFrame(`${big}${TOKEN.slice(0, 10)}`, false, { fin: false, opcode: 2 }),
    wsFrame(`ping ${TOKEN}`, false, { opcode: 9 }),
    wsFrame(`${TOKEN.slice(10)}${"y".repeat(200)}`, false, { opcode: 0 }),
  ]);
  const { frames, error } = await run(wire, [5, 65_000, 70_020]);
  assert.equal(error, null);
  assert.deepEqual(frames.map((f) => f.opcode), [2, 9, 0]);
  assert.equal(frames[1]!.payload, `ping ${MASKED}`);
  const message = frames[0]!.payload + frames[2]!.payload;
  assert.equal(message, `${big}${MASKED}${"y".repeat(200)}`);
});

test("a compressed or a masked server frame ends the stream instead of passing unsearched", async () => {
  assert.match((await run(wsFrame(`x ${TOKEN}`, false, { rsv1: true }))).error!.message, /RSV bits set/);
  assert.match((await run(wsFrame(`x ${TOKEN}`, true))).error!.message, /a masked frame/);
});
