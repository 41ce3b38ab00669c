// An upgrade a proxy of the bottle's (the firewall, egress) sends on for the agent. Node's
// server gives the agent's socket up at the upgrade, so the answer is written to it by
// hand, whichever it is: the upstream's 101, or its refusal (a 401 asking for
// credentials, say), which streams to the agent as it comes, never held whole, with the
// connection closed after it. And the agent may leave while the upstream has not yet
// answered, or while a refusal streams: nothing of node's ties the two ends then.
//
// Node hands the agent's socket over unread: what the agent sends after its request head
// (a client may send its first WebSocket frames at once, before the 101) would sit in the
// socket's buffer, and a socket whose buffer is never read never reports its end. So the
// agent's socket is read from the upgrade on: its bytes held until the upstream answers
// (the frames after a 101; dropped after a refusal, as a body no one asked for), its end
// seen, and after an answer that is not a 101 whatever else it sends is read and dropped,
// so the socket is let go once the agent closes its side.
import { Buffer } from "node:buffer";
import type http from "node:http";
import type { Duplex } from "node:stream";

/** A status line and header lines written by hand, the blank line that ends them included. */
export function headText(status: { code: number; phrase: string }, headers: [string, string][]): string {
  let text = `HTTP/1.1 ${status.code} ${status.phrase}\r\n`;
  for (const [k, v] of headers) text += `${k}: ${v}\r\n`;
  return `${text}\r\n`;
}

/**
 * Tie an upgrade's upstream request to the agent's socket until the upstream switches
 * protocols: the agent closing its socket, or only its side of it (node's own server takes
 * a half-close so: the socket is half-open, and nothing else would ever notice), abandons
 * the request and closes the upstream's connection. Without it an upstream that holds the
 * head would keep its connection until the head deadline (minutes), and one streaming an
 * endless refusal for ever. Returns whether the agent left: the request's error ("socket
 * hang up") is then the proxy's own doing, not the upstream's, to be neither answered nor
 * logged.
 */
export function abandonWithAgent(agent: Duplex, req: http.ClientRequest): () => boolean {
  let left = false;
  const leave = () => {
    left = true;
    req.destroy();
    agent.destroy();
  };
  agent.once("close", leave).once("end", leave);
  req.once("upgrade", () => agent.off("close", leave).off("end", leave));
  return () => left;
}

/** What an agent may send before the answer to its upgrade, held in memory; past it the
 * socket is paused and TCP holds the rest, as node's own buffer of a socket would (the
 * agent leaving is then seen only once the answer comes, or its deadline). */
const EARLY_BYTES = 64 * 1024;

export interface EarlyBytes {
  /** The upstream switched protocols: stop holding, and hand over what the agent sent
   * after its request head, in order; its socket flows again for whoever reads it next. */
  take(): Buffer;
  /** It did not: drop what is held, and throw away whatever the agent sends from now on. */
  discard(): void;
}

/** Start reading what the agent sends after its upgrade request (`head`, then its socket). */
export function holdEarlyBytes(agent: Duplex, head: Buffer): EarlyBytes {
  let held: Buffer[] = head.length ? [head] : [];
  let bytes = head.length;
  const onData = (chunk: Buffer) => {
    held.push(chunk);
    bytes += chunk.length;
    if (bytes >= EARLY_BYTES) agent.pause();
  };
  agent.on("data", onData);
  if (bytes >= EARLY_BYTES) agent.pause();
  const stop = (): Buffer => {
    agent.off("data", onData);
    const out = held.length === 1 ? held[0]! : Buffer.concat(held, bytes);
    held = [];
    bytes = 0;
    agent.resume();
    return out;
  };
  return { take: stop, discard: () => void stop() };
}
