// The fake internet's recording servers (plain Node 18, run inside the fake-upstream
// container as root): HTTPS on 443 and HTTP on 80 for every name the container answers to,
// with a leaf from the test's CA, accepting WebSocket upgrades; a DNS server on UDP 53 that answers NXDOMAIN. Every TCP
// connection, HTTP request and DNS query is appended as one JSON line to the events log,
// which the test reads back with `docker exec`. GET /echo answers with the request's own
// headers (an upstream that hands a credential back). FAKE_SERVE=dns runs the DNS server alone,
// on FAKE_DNS_BIND (a resolver on one of the host's own addresses).
import { createHash } from "node:crypto";
import { appendFileSync, readFileSync } from "node:fs";
import dgram from "node:dgram";
import http from "node:http";
import https from "node:https";
import { parseWsFrame, wsFrame } from "/fake-lib/ws-frame.mjs";

const LOG = process.env.FAKE_LOG ?? "/var/log/fake/events.jsonl";
const TLS_DIR = process.env.FAKE_TLS ?? "/fake-tls";
const record = (event) => appendFileSync(LOG, JSON.stringify({ at: Date.now(), ...event }) + "\n");

function handler(tls) {
  return (req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("latin1");
      record({
        kind: "http",
        tls,
        sni: tls ? (req.socket.servername ?? null) : null,
        host: req.headers.host ?? null,
        method: req.method,
        path: req.url,
        headers: req.headers,
        body,
        remote: req.socket.remoteAddress,
      });
      if (req.url === "/echo") {
        // An upstream that hands the request's credential back, in a header and the body.
        res.writeHead(200, { "content-type": "application/json", "x-echo-authorization": req.headers.authorization ?? "(none)" });
        return res.end(JSON.stringify({ headers: req.headers }) + "\n");
      }
      res.writeHead(200, { "content-type": "application/json", "x-fake-upstream": "1" });
      res.end(JSON.stringify({ ok: true, host: req.headers.host ?? null }) + "\n");
    });
  };
}

// WebSocket: accept any upgrade, record every frame the client sends (unmasked), echo
// text frames back. The codec is the tests' own (tests/support/ws-frame.mjs, mounted in).
function onUpgrade(tls) {
  return (req, socket) => {
    record({ kind: "ws-open", tls, host: req.headers.host ?? null, path: req.url, headers: req.headers, remote: socket.remoteAddress });
    const accept = createHash("sha1").update(`${req.headers["sec-websocket-key"]}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    let buf = Buffer.alloc(0);
    socket.on("data", (c) => {
      buf = Buffer.concat([buf, c]);
      for (let f = parseWsFrame(buf); f; f = parseWsFrame(buf)) {
        buf = buf.subarray(f.size);
        record({ kind: "ws", opcode: f.opcode, payload: f.payload.toString("latin1") });
        if (f.opcode === 1) socket.write(wsFrame(`echo: ${f.payload.toString()}`.slice(0, 125), false));
      }
    });
    socket.on("error", () => socket.destroy());
  };
}

function logConnections(server, port) {
  server.on("connection", (socket) => record({ kind: "tcp", port, remote: socket.remoteAddress }));
}

const dnsOnly = process.env.FAKE_SERVE === "dns";
const secure = dnsOnly ? null : https.createServer({ cert: readFileSync(`${TLS_DIR}/cert.pem`), key: readFileSync(`${TLS_DIR}/key.pem`) }, handler(true));
if (secure) logConnections(secure, 443);
secure?.on("upgrade", onUpgrade(true));
const plain = dnsOnly ? null : http.createServer(handler(false));
if (plain) logConnections(plain, 80);
plain?.on("upgrade", onUpgrade(false));

// DNS: read the question name, answer NXDOMAIN (RCODE 3) with the question echoed.
const dns = dgram.createSocket("udp4");
dns.on("message", (msg, from) => {
  const labels = [];
  let i = 12;
  while (i < msg.length && msg[i] !== 0 && labels.length < 128) {
    labels.push(msg.subarray(i + 1, i + 1 + msg[i]).toString("latin1"));
    i += msg[i] + 1;
  }
  record({ kind: "dns", name: labels.join(".").toLowerCase(), remote: from.address });
  if (msg.length < 12) return;
  const answer = Buffer.from(msg.subarray(0, Math.min(msg.length, i + 5)));
  answer[2] = (answer[2] | 0x80) & ~0x04; // QR=1, not authoritative
  answer[3] = (answer[3] & 0xf0) | 3; // NXDOMAIN
  answer.writeUInt16BE(1, 4); // one question
  answer.fill(0, 6, 12); // no answer, authority or additional records
  dns.send(answer, from.port, from.address);
});

let pending = dnsOnly ? 1 : 3;
const up = () => --pending === 0 && process.stdout.write("fake-internet ready\n");
secure?.listen(443, "0.0.0.0", up);
plain?.listen(80, "0.0.0.0", up);
dns.bind(53, process.env.FAKE_DNS_BIND ?? "0.0.0.0", up);
for (const s of ["SIGTERM", "SIGINT"]) process.on(s, () => process.exit(0));
