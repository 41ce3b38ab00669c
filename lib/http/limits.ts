// Limits every hop of the chain shares, so a request one hop accepts the next one does too
// (egress had node's 16 KiB default behind the firewall's 64 KiB: a 20 KB cookie got 431).

/** The largest request or response head a proxy reads. */
export const MAX_HEADER_BYTES = 64 * 1024;

/**
 * How many bytes of an answer's body may wait in each stream it passes (a proxy's socket
 * to its client, the hop client's body) before the one feeding it is held back. node's
 * default, 16 KiB, is one TLS record: every record relayed filled it, so a MiB answer
 * paused and resumed the stream before it, and waited for a 'drain', 64 times in each
 * daemon. Backpressure is the same, with a window of four records.
 */
export const RELAY_HIGH_WATER_MARK = 64 * 1024;
