// An upgrade a proxy of the bottle's (the firewall, egress) sends on for the agent. Node's
// server gives the agent's socket up at the upgrade, so the answer is written to it by
// hand, whichever it is: the upstream's 101, or its refusal (a 401 asking for
// credentials, say), which streams to the agent as it comes, never held whole, with the
// connection closed after it. And the agent may leave while the upstream has not yet
// answered, or while a refusal streams: nothing of node's ties the two ends then.
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
