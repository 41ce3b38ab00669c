// Test support: what a compromised bundle daemon can do to the queue folder it shares
// with the host, as a real process, so a race with the host's side is a real one. Prints
// "ready" once it is at work, then runs until stopped.
//
//   hostile-bundle.ts swap-temps QUEUE_DIR VICTIM  rename a symlink to VICTIM over every
//                                                   temp file that shows up in QUEUE_DIR
//                                                   (prints "swapped NAME" for each)
//   hostile-bundle.ts flap FILE CONTENT_FILE       make FILE empty, then write CONTENT_FILE's
//                                                   bytes into it, over and over
import { closeSync, ftruncateSync, openSync, readdirSync, readFileSync, renameSync, symlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { setImmediate } from "node:timers";

const [mode, a, b] = process.argv.slice(2);

/** Run `step` flat out, giving the event loop a turn every 20 ms (so a signal is heard). */
function busy(step: () => void): void {
  const until = performance.now() + 20;
  while (performance.now() < until) step();
  setImmediate(() => busy(step));
}

function pause(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

if (mode === "swap-temps") {
  const prepared = join(a!, "prepared-link");
  const prepare = () => symlinkSync(b!, prepared);
  prepare();
  console.log("ready");
  busy(() => {
    for (const name of readdirSync(a!)) {
      if (!name.includes(".tmp-")) continue;
      try {
        renameSync(prepared, join(a!, name));
      } catch {
        continue; // refused (a sticky folder), or gone already
      }
      console.log(`swapped ${name}`);
      prepare();
    }
  });
} else if (mode === "flap") {
  const content = readFileSync(b!);
  const fd = openSync(a!, "r+");
  process.on("exit", () => closeSync(fd));
  console.log("ready");
  busy(() => {
    ftruncateSync(fd, 0);
    pause(0.2);
    writeSync(fd, content, 0, content.length, 0);
    pause(0.2);
  });
} else {
  console.error(`usage: hostile-bundle.ts swap-temps QUEUE_DIR VICTIM | flap FILE CONTENT_FILE (not ${mode})`);
  process.exitCode = 2;
}
