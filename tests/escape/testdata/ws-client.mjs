// A minimal WebSocket client, run by the agent's own node (18) from stdin, the way any
// WebSocket library in the bottle would go out: CONNECT through $HTTPS_PROXY, TLS trusting
// the bottle CA (NODE_EXTRA_CA_CERTS), the upgrade, one masked text message, then the
// first frame back. Prints one JSON line: {status, frame: {opcode, text} | {opcode, code, reason}}.
//   node --input-type=module - HOST PATH MESSAGE    (MESSAGE "@FILE": the file's bytes)
import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { randomBytes } from "node:crypto";

const [host, path, message] = process.argv.slice(2);
const proxy = new URL(process.env.HTTPS_PROXY);

function reader(socket) {
  let buf = Buffer.alloc(0);
  let wake = () => {};
  socket.on("data", (c) => {
    buf = Buffer.concat([buf, c]);
    wake();
  });
  socket.on("close", () => wake());
  return async function until(fn) {
    for (;;) {
      const r = fn(buf);
      if (r) {
        buf = buf.subarray(r.used);
        return r.value;
      }
      if (socket.destroyed) throw new Error(`connection closed; had ${JSON.stringify(buf.toString("latin1").slice(0, 200))}`);
      await new Promise((ok) => (wake = ok));
    }
  };
}

const head = (b) => {
  const end = b.indexOf("\r\n\r\n");
  return end < 0 ? null : { used: end + 4, value: b.subarray(0, end).toString("latin1") };
};

const raw = net.connect(Number(proxy.port), proxy.hostname);
await new Promise((ok, fail) => raw.once("connect", ok).once("error", fail));
raw.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`);
const connected = await reader(raw)(head);
if (!/^HTTP\/1\.[01] 200/.test(connected)) {
  console.log(JSON.stringify({ status: Number(connected.split(" ")[1]), frame: null }));
  process.exit(0);
}
raw.removeAllListeners("data");
const socket = tls.connect({ socket: raw, servername: host });
await new Promise((ok, fail) => socket.once("secureConnect", ok).once("error", fail));
const until = reader(socket);
socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\n\r\n`);
const status = Number((await until(head)).split(" ")[1]);
let frame = null;
if (status === 101) {
  const payload = message.startsWith("@") ? readFileSync(message.slice(1)) : Buffer.from(message);
  const mask = randomBytes(4);
  let len;
  if (payload.length < 126) len = Buffer.from([0x81, 0x80 | payload.length]);
  else if (payload.length < 65536) len = Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 255]);
  else {
    len = Buffer.from([0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0]);
    len.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  socket.write(Buffer.concat([len, mask, payload.map((b, i) => b ^ mask[i % 4])]));
  frame = await until((b) => {
    if (b.length < 2 || b.length < 2 + (b[1] & 0x7f)) return null;
    const data = b.subarray(2, 2 + (b[1] & 0x7f));
    const opcode = b[0] & 0x0f;
    const value = opcode === 8 ? { opcode, code: data.readUInt16BE(0), reason: data.subarray(2).toString() } : { opcode, text: data.toString() };
    return { used: 2 + data.length, value };
  });
}
console.log(JSON.stringify({ status, frame }));
socket.destroy();
