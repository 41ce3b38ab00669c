// `node --import` this in a daemon under test: says on stderr, synchronously (so in order
// with the daemon's own lines), "test-hook: SecureContext made" at the process's first
// tls.createSecureContext, the call that loads node's root store. Patched on node:tls
// itself and synced into its ES module exports, so every way of calling it is seen.
import { writeSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import tls from "node:tls";

const original = tls.createSecureContext;
let said = false;
tls.createSecureContext = function (...args) {
  if (!said) {
    said = true;
    writeSync(2, "test-hook: SecureContext made\n");
  }
  return original.apply(this, args);
};
syncBuiltinESMExports();
