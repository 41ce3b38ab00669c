// Runs the benchmark's fake HTTPS upstream as its own process, so serving (and
// encrypting) responses does not share an event loop with the load generator. Prints
// "listening on 127.0.0.1:PORT" on stderr like the sidecar daemons; stops on SIGTERM.
//
//   node --import ./node_modules/tsx/dist/loader.mjs tests/bench/lib/upstream-main.ts --cert leaf.pem --key leaf-key.pem --authorization 'Bearer x'
import { readFile } from "node:fs/promises";
import type net from "node:net";
import { createProgram, mainOf } from "../../../lib/cli.ts";
import { log } from "../../../lib/log.ts";
import { createUpstream } from "./upstream.ts";

const program = createProgram("bench-upstream", "The proxy benchmark's fake HTTPS upstream (loopback only).")
  .requiredOption("--cert <file>", "server certificate (PEM)")
  .requiredOption("--key <file>", "server key (PEM)")
  .requiredOption("--authorization <value>", "the Authorization value that counts as injected")
  .action(async (o: { cert: string; key: string; authorization: string }) => {
    const server = createUpstream({ cert: await readFile(o.cert, "utf8"), key: await readFile(o.key, "utf8"), authorization: o.authorization });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    log.info(`listening on 127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  });

await mainOf(program);
