// The TLS library: mint a bottle CA, mint leaves for fixed hosts, and issue leaves on the
// fly for interception. Used by bb-bundle and the tests; the firewall imports issuer.ts and
// ca-check.ts themselves, as this module's cert.ts loads @peculiar/x509 at once.
export { mintCa, mintLeaf, type PemPair } from "./cert.ts";
export { checkCa } from "./ca-check.ts";
export { createLeafIssuer, isLeafHost, normalizeHost, type LeafIssuer, type LeafIssuerOptions } from "./issuer.ts";
export { clientContext, PROXY_CIPHERS } from "./ciphers.ts";
