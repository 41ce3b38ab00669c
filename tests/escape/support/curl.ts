// curl run inside a bottle's agent (through its HTTP(S)_PROXY unless told otherwise),
// with the status, curl's exit code and the body taken apart for assertions.
import type { Bottle } from "./bottle.ts";

interface CurlResult {
  /** HTTP status of the final response ("000" when there was none). */
  status: string;
  /** Status the proxy answered a CONNECT with ("000" when there was no CONNECT). */
  connect: string;
  exit: number;
  body: string;
  stderr: string;
}

const SCRIPT = `f=$(mktemp); w=$(curl -sS -m 15 -o "$f" -w '%{http_code} %{http_connect}' "$@"); rc=$?; echo "$w $rc"; cat "$f"; rm -f "$f"`;

export async function curlIn(bottle: Bottle, args: string[], opts: { input?: string } = {}): Promise<CurlResult> {
  const r = await bottle.sh(SCRIPT, { args, input: opts.input });
  const nl = r.stdout.indexOf("\n");
  const [status = "", connect = "", exit = ""] = r.stdout.slice(0, nl).split(" ");
  return { status, connect, exit: Number(exit), body: r.stdout.slice(nl + 1), stderr: r.stderr };
}
