// RFC 6455 framing both proxies share: the firewall reads the agent's (masked) frames to
// scan them, egress reads a routed server's frames to mask the credential in them.
import { Buffer } from "node:buffer";

/**
 * The payload length a frame's header announces and where the length field ends (a
 * client frame's mask key follows it); null until the length field has arrived. Call
 * with at least 2 bytes. A 64-bit length past 2^53 comes back rounded, still far over
 * any limit a caller checks it against.
 */
export function frameLength(buf: Buffer): { len: number; at: number } | null {
  const short = buf[1]! & 0x7f;
  if (short < 126) return { len: short, at: 2 };
  if (short === 126) return buf.length < 4 ? null : { len: buf.readUInt16BE(2), at: 4 };
  return buf.length < 10 ? null : { len: Number(buf.readBigUInt64BE(2)), at: 10 };
}

/** An unmasked frame, as a server sends it. */
export function serverFrame(fin: boolean, opcode: number, payload: Buffer): Buffer {
  const b0 = (fin ? 0x80 : 0) | opcode;
  let head: Buffer;
  if (payload.length < 126) head = Buffer.from([b0, payload.length]);
  else if (payload.length < 65536) {
    head = Buffer.from([b0, 126, 0, 0]);
    head.writeUInt16BE(payload.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  return Buffer.concat([head, payload]);
}
