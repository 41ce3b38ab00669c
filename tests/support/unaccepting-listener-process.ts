// Test fixture process for unaccepting-listener.ts: listens on 127.0.0.1 with an accept
// queue of one, prints its port, then blocks its only thread for good (Atomics.wait takes
// no CPU), so the connections the kernel queues are never accepted.
import { writeSync } from "node:fs";
import net from "node:net";

const server = net.createServer();
server.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => {
  writeSync(1, `${(server.address() as net.AddressInfo).port}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
});
