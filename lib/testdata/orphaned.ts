// For proc.test.ts: runInteractive($2...) with `orphaned` the command in $1 (a sh script,
// given up to 2 s), printing "started" once the child runs; the test then kills this process.
import process from "node:process";
import { runInteractive } from "../proc.ts";

const [script, ...argv] = process.argv.slice(2);
const done = runInteractive(argv, { orphaned: { argv: ["sh", "-c", script!], timeoutMs: 2000 }, stdio: ["ignore", "ignore", "ignore"] });
process.stdout.write("started\n");
process.exitCode = await done;
