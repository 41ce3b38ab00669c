// Test support: a process that logs warning after warning into a stderr nobody reads yet
// (as a daemon in the bundle when docker reads its log slower than an agent makes it
// write), then an info line, and says on stdout how much waits unwritten.
//   log-flood.ts COUNT
import process from "node:process";
import { createLogger } from "../log.ts";

const log = createLogger({ prefix: "flood: " });
const count = Number(process.argv[2]);
for (let i = 0; i < count; i++) log.warn(`blocked GET h${i}.test: ${"x".repeat(300)}`);
log.info("policy reloaded");
process.stdout.write(`queued ${process.stderr.writableLength ?? 0}\n`);
// Once the reader has caught up, one more line: the count of those left out comes first.
const last = () => log.info("done");
if ((process.stderr.writableLength ?? 0) > 0) process.stderr.once("drain", last);
else last();
