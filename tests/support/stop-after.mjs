// `node --import` this (through NODE_OPTIONS, so it reaches a tool a script starts) to have
// the tool stop itself (SIGSTOP) right after one of its own calls: the first `fs/promises`
// $BB_TEST_STOP_CALL (mkdir, link or rename) whose target path matches the regular
// expression $BB_TEST_STOP_PATH, or with $BB_TEST_STOP_CALL=stdout the first write to stdout
// whose text matches it (written whole by then: stdout to a pipe or file is synchronous on
// Linux). The call is made for real and the tool held there, between two of its steps, for a
// test to send what a terminal would (a Ctrl-C to the group) and then let it go on
// (SIGCONT). Without both variables it does nothing.
import fsp from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import process from "node:process";

const call = process.env.BB_TEST_STOP_CALL;
const path = process.env.BB_TEST_STOP_PATH;
if (call === "stdout" && path) {
  const pattern = new RegExp(path);
  const write = process.stdout.write;
  let stopped = false;
  process.stdout.write = function (chunk, ...rest) {
    const result = write.call(this, chunk, ...rest);
    if (!stopped && pattern.test(String(chunk))) {
      stopped = true;
      process.kill(process.pid, "SIGSTOP");
    }
    return result;
  };
} else if (call && path) {
  const pattern = new RegExp(path);
  const original = fsp[call];
  let stopped = false;
  fsp[call] = async function (...args) {
    const result = await original.apply(this, args);
    // The target: mkdir's only path, link's and rename's second.
    const target = String(args[call === "mkdir" ? 0 : 1]);
    if (!stopped && pattern.test(target)) {
      stopped = true;
      process.kill(process.pid, "SIGSTOP");
    }
    return result;
  };
  // Named imports of node:fs/promises (`import { mkdir } ...`) then see the wrapper too.
  syncBuiltinESMExports();
}
