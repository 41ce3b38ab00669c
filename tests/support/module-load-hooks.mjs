// Node module hooks for the startup tests (a daemon listens before it loads a heavy
// dependency): says on stderr, synchronously (so in order with the daemon's own lines),
// "test-hook: <name> loaded" when the first module whose URL contains that name's marker is
// loaded. The names and markers come from module-load-register.mjs.
import { writeSync } from "node:fs";

let watched = [];
export function initialize(data) {
  watched = Object.entries(data);
}

export async function load(url, context, nextLoad) {
  for (const [i, [name, marker]] of watched.entries()) {
    if (url.includes(marker)) {
      watched.splice(i, 1); // once per name
      writeSync(2, `test-hook: ${name} loaded\n`);
      break;
    }
  }
  return nextLoad(url, context);
}
