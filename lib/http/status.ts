// The status line a proxy relays. Node's parser accepts status codes and reason phrases
// that its own writeHead then refuses to send (a code under 100, a control byte in the
// phrase), and a throw there, inside a response callback, would take the whole daemon and
// every connection it holds down. The phrase is also free text an upstream chooses: an
// echo of a request header would carry egress's injected credential. So the code is
// checked and the phrase is always the standard one.
import http from "node:http";

/** The status to relay, or null when it is not one a response can carry. */
export function relayStatus(code: number | undefined): { code: number; phrase: string } | null {
  if (code === undefined || !Number.isInteger(code) || code < 100 || code > 599) return null;
  return { code, phrase: http.STATUS_CODES[code] ?? "" };
}
