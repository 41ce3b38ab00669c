// A WebSocket frame codec for tests, written apart from the firewall's own so that a test
// checks the firewall against an independent reading of RFC 6455. Plain JavaScript (types
// in ws-frame.d.mts): the escape suite's fake server, run by the Node of a container,
// imports it too.
import { Buffer } from "node:buffer";

/** A WebSocket frame (text unless `o.opcode` says otherwise); clients must mask theirs. */
export function wsFrame(text, mask, o = {}) {
  const payload = Buffer.from(text);
  const key = mask ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0);
  const body = mask ? payload.map((b, i) => b ^ key[i % 4]) : payload;
  const b0 = ((o.fin ?? true) ? 0x80 : 0) | (o.rsv1 ? 0x40 : 0) | (o.opcode ?? 1);
  const m = mask ? 0x80 : 0;
  let len;
  if (payload.length < 126) len = Buffer.from([b0, m | payload.length]);
  else if (payload.length < 65536) {
    len = Buffer.from([b0, m | 126, 0, 0]);
    len.writeUInt16BE(payload.length, 2);
  } else {
    len = Buffer.from([b0, m | 127, 0, 0, 0, 0, 0, 0, 0, 0]);
    len.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  return Buffer.concat([len, key, body]);
}

/** Decode one frame (masked or not, any length); null until it is complete. */
export function parseWsFrame(buf) {
  if (buf.length < 2) return null;
  const masked = (buf[1] & 0x80) !== 0;
  let len = buf[1] & 0x7f;
  let at = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    len = Number(buf.readBigUInt64BE(2));
    at = 10;
  }
  const start = at + (masked ? 4 : 0);
  if (buf.length < start + len) return null;
  const data = buf.subarray(start, start + len);
  return { opcode: buf[0] & 0x0f, payload: Buffer.from(masked ? data.map((b, i) => b ^ buf[at + (i % 4)]) : data), size: start + len };
}
