// The TLS library: mint a bottle CA, mint leaves for fixed hosts, and issue leaves on the
// fly for interception. Used by the tests; bb-bundle (lib/bundle/ca.ts, when it first
// needs a CA) import cert.ts, and the firewall issuer.ts and ca-check.ts, themselves: loading
// this module loads @peculiar/x509 (through cert.ts) at once.
export { mintCa, mintLeaf, type PemPair } from "./cert.ts";
export { checkCa } from "./ca-check.ts";
export { createLeafIssuer } from "./issuer.ts";
export { clientContext, PROXY_CIPHERS } from "./ciphers.ts";
