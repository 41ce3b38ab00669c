// Module hooks for startup.test.ts: says on stderr, synchronously (so in order with the
// daemon's own lines), when the first module of the MCP SDK is loaded.
import { writeSync } from "node:fs";

let said = false;
export async function load(url, context, nextLoad) {
  if (!said && url.includes("/@modelcontextprotocol/sdk/")) {
    said = true;
    writeSync(2, "test-hook: MCP SDK loaded\n");
  }
  return nextLoad(url, context);
}
