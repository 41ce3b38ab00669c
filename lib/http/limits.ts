// Limits every hop of the chain shares, so a request one hop accepts the next one does too
// (egress had node's 16 KiB default behind the firewall's 64 KiB: a 20 KB cookie got 431).

/** The largest request or response head a proxy reads. */
export const MAX_HEADER_BYTES = 64 * 1024;
