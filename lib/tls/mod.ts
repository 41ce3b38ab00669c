// The TLS library: mint a bottle CA, mint leaves for fixed hosts, and issue leaves on the
// fly for interception. Used by the firewall and by bb-bundle.
export { mintCa, mintLeaf, type PemPair } from "./cert.ts";
export { createLeafIssuer, isLeafHost, normalizeHost, type LeafIssuer, type LeafIssuerOptions } from "./issuer.ts";
export { clientContext, PROXY_CIPHERS } from "./ciphers.ts";
