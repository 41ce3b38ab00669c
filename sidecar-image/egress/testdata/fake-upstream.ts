// Test fixture process: the "internet" behind egress, all on 127.0.0.1. It prints one
// JSON line {https, http, rogue, echo} with its ports, then serves:
//   https (trusted test cert) and http: answer every request with JSON describing what
//     arrived (method, url, raw headers, body, the client's port); WebSocket upgrades get
//     101, a header echoing the Authorization seen, then every byte echoed back;
//     both reports are hex, because egress masks a routed credential in what comes back
//     (redact.ts), and a plain echo would show the mask rather than what arrived;
//   rogue: https with a self-signed certificate nobody trusts;
//   echo: raw TCP echo (the far end of CONNECT tunnels).
// Usage: node --import tsx fake-upstream.ts CERT KEY ROGUE_CERT ROGUE_KEY
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import process from "node:process";

const [cert, key, rogueCert, rogueKey] = process.argv.slice(2).map((f) => readFileSync(f, "utf8"));

function describe(req: http.IncomingMessage, res: http.ServerResponse) {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const headers: [string, string][] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
    const body = JSON.stringify({ method: req.method, url: req.url, headers, body: Buffer.concat(chunks).toString("utf8"), clientPort: req.socket.remotePort });
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(Buffer.from(body).toString("hex"));
  });
}

function upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer) {
  const accept = createHash("sha1").update(`${req.headers["sec-websocket-key"]}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n` +
      `x-seen-authorization-hex: ${Buffer.from(req.headers.authorization ?? "(none)").toString("hex")}\r\n\r\n`,
  );
  if (head.length) socket.write(head);
  socket.pipe(socket);
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)));
}

const secure = https.createServer({ cert, key }, describe).on("upgrade", upgrade);
const plain = http.createServer(describe).on("upgrade", upgrade);
const rogue = https.createServer({ cert: rogueCert, key: rogueKey }, describe);
const echo = net.createServer((s) => s.pipe(s));
const ports = { https: await listen(secure), http: await listen(plain), rogue: await listen(rogue), echo: await listen(echo) };
process.stdout.write(`${JSON.stringify(ports)}\n`);
process.on("SIGTERM", () => process.exit(0));
