// The proxy benchmark's floor: the least any two-hop intercepting design does per byte,
// run as two processes like firewall→egress. The front hop answers the agent's CONNECT,
// terminates its TLS with a leaf from the bottle CA and pipes the plain bytes to the back
// hop, which pipes them into its own TLS session to the upstream. No HTTP parsing, no
// scanning, no credential: what is left is two extra processes, one decrypt and one
// re-encrypt each way, and the loopback hops, relayed with plain stream pipes. Our chain's
// added latency over this row's is what our HTTP handling and scanning cost; this row's
// added latency over direct is what the two-hop design costs in node.
//
//   ... tls-relay-main.ts front --cert leaf.pem --key leaf-key.pem --next 127.0.0.1:PORT
//   ... tls-relay-main.ts back --upstream 127.0.0.1:PORT --servername api.example.test
// Each prints "listening on 127.0.0.1:PORT" on stderr and stops on SIGTERM.
import { Buffer } from "node:buffer";
import { readFile } from "node:fs/promises";
import net from "node:net";
import process from "node:process";
import tls from "node:tls";
import { Command, createProgram, mainOf } from "../../../lib/cli.ts";
import { parseHostPort, tuneGcForRelaying } from "../../../lib/daemon.ts";
import { log } from "../../../lib/log.ts";
import { clientContext, PROXY_CIPHERS } from "../../../lib/tls/mod.ts";

const endpoint = (flag: string) => (text: string) => parseHostPort(text, flag);

/** Both directions piped; either side closing or failing closes the other. */
function splice(a: net.Socket, b: net.Socket): void {
  a.pipe(b).on("error", () => a.destroy());
  b.pipe(a).on("error", () => b.destroy());
  for (const [x, y] of [[a, b], [b, a]] as const) {
    x.on("error", () => y.destroy());
    x.on("close", () => y.destroy());
  }
}

async function listen(server: net.Server): Promise<void> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  log.info(`listening on 127.0.0.1:${(server.address() as net.AddressInfo).port}`);
}

/** Read up to the end of the CONNECT head; bytes after it (a ClientHello) go back in front. */
function connectHead(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return head.length > 65536 ? reject(new Error("CONNECT head too long")) : undefined;
      socket.off("data", onData);
      socket.pause();
      resolve(head.subarray(end + 4));
    };
    socket.on("data", onData);
    socket.once("error", reject);
  });
}

const front = new Command("front")
  .description("Answer CONNECT, terminate TLS, pipe plain bytes to --next.")
  .requiredOption("--cert <file>", "leaf certificate for the upstream's name, from the bottle CA (PEM)")
  .requiredOption("--key <file>", "its key (PEM)")
  .requiredOption("--next <address:port>", "the back hop", endpoint("--next"))
  .action(async (o: { cert: string; key: string; next: { host: string; port: number } }) => {
    const secureContext = tls.createSecureContext({ cert: await readFile(o.cert, "utf8"), key: await readFile(o.key, "utf8"), ciphers: PROXY_CIPHERS });
    await listen(net.createServer({ noDelay: true }, (raw) => {
      connectHead(raw).then((rest) => {
        raw.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        if (rest.length) raw.unshift(rest);
        const agent = new tls.TLSSocket(raw, { isServer: true, secureContext, ALPNProtocols: ["http/1.1"] });
        splice(agent, net.connect({ ...o.next, noDelay: true }));
      }, () => raw.destroy());
    }));
  });

const back = new Command("back")
  .description("Pipe plain bytes into a TLS session to --upstream.")
  .requiredOption("--upstream <address:port>", "the upstream", endpoint("--upstream"))
  .requiredOption("--servername <name>", "SNI and the name its certificate must carry")
  .action(async (o: { upstream: { host: string; port: number }; servername: string }) => {
    // The upstream's CA comes from NODE_EXTRA_CA_CERTS, as it does for egress in the rig.
    const secureContext = clientContext();
    await listen(net.createServer({ noDelay: true }, (plain) => {
      const upstream = tls.connect({ ...o.upstream, servername: o.servername, secureContext, ALPNProtocols: ["http/1.1"] });
      upstream.setNoDelay(true);
      splice(plain, upstream);
    }));
  });

// The same GC setting the relaying daemons run with, so the floor is not charged for a
// collector our chain does not pay for.
tuneGcForRelaying();
// Exit (rather than die of the signal) so a --cpu-prof profile gets written (BB_BENCH_CPU_PROF).
process.on("SIGTERM", () => process.exit(0));
await mainOf(createProgram("bench-tls-relay", "The proxy benchmark's two-hop TLS relay floor (loopback only).").addCommand(front).addCommand(back));
