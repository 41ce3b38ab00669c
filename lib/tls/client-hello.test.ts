// readClientHello() against ClientHellos node's own TLS client writes, captured on loopback.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import tls from "node:tls";
import { test } from "node:test";
import { readClientHello } from "./client-hello.ts";

/** The bytes a TLS client sends first, for `servername` (none: no SNI at all). */
async function capture(servername: string | undefined): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const first = new Promise<Buffer>((resolve) => server.once("connection", (s) => s.once("data", (c: Buffer) => (resolve(c), s.destroy()))));
  const client = tls.connect({ host: "127.0.0.1", port: (server.address() as net.AddressInfo).port, servername, rejectUnauthorized: false });
  client.on("error", () => {});
  const bytes = await first;
  client.destroy();
  server.close();
  return bytes;
}

test("the server name of a real ClientHello, and none when the client sends none", async () => {
  assert.deepEqual(readClientHello(await capture("Pass.Example.TEST")), { kind: "hello", sni: "pass.example.test" });
  assert.deepEqual(readClientHello(await capture("")), { kind: "hello", sni: null });
});

test("a partial record asks for more, other protocols are not TLS, a cut or split ClientHello is refused", async () => {
  const hello = await capture("pass.example.test");
  for (let n = 1; n < hello.length; n++) assert.equal(readClientHello(hello.subarray(0, n)).kind, "need", `first ${n} bytes`);
  assert.deepEqual(readClientHello(Buffer.from("SSH-2.0-OpenSSH_9.2\r\n")), { kind: "not-tls" });
  // The record says it is shorter than the ClientHello in it: split across records.
  const split = Buffer.from(hello.subarray(0, 5 + 40));
  split.writeUInt16BE(40, 3);
  assert.deepEqual(readClientHello(split), { kind: "bad", reason: "the ClientHello is split across TLS records" });
  // A server-name extension whose length runs past the end.
  const broken = Buffer.from(hello);
  const at = broken.indexOf(Buffer.from("pass.example.test"));
  broken.writeUInt16BE(0xffff, at - 2);
  assert.equal(readClientHello(broken).kind, "bad");
});
