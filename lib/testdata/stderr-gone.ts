// Test support: a tool whose stderr goes away mid-run (its reader exits, as a terminal
// that closed does): it says one line, waits for its stdin to end (the test closes its
// end of stderr first), logs on into the dead stderr, then says on stdout that it
// finished its work.
import process from "node:process";
import { createLogger } from "../log.ts";

const log = createLogger({ prefix: "gone: " });
log.info("started");
process.stdin.resume();
process.stdin.on("end", async () => {
  for (let i = 0; i < 50; i++) {
    log.warn(`line ${i} into a stderr nobody reads`);
    log.info(`step ${i}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  process.stdout.write("work done\n");
});
