// What the firewall checks in one request before it may leave: the URL, every forwarded
// header, and the body (decompressed when the client compressed it). A non-null result is
// the block: HTTP status plus the reason for the 403 body and the log line. Reasons name
// the detector and where it matched, with the scanner's redacted excerpt, never the secret.
import { Buffer } from "node:buffer";
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import { promisify } from "node:util";
import zlib from "node:zlib";
import type { Finding, Scanner } from "../../lib/dlp/mod.ts";
import { OFF_THREAD_BYTES, type OffThreadScanner, scanHere } from "./off-thread.ts";
import type { CompiledPolicy } from "./policy.ts";

export interface Block {
  status: number;
  reason: string;
}

/**
 * Bodies are buffered whole so a blocked request never reaches the upstream at all (a
 * streamed scan could only abort one already half sent). Larger bodies are refused with
 * 413 and this reason rather than forwarded unscanned.
 */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;
/** Bound on a decompressed body (zip bombs). */
const MAX_DECODED_BYTES = 64 * 1024 * 1024;

/** Headers whose values the server issued and the client echoes back (session cookies,
 * ETags): random by design, so only known formats and sensitive values are checked. */
const ECHO_HEADERS = new Set(["cookie", "if-none-match", "if-match"]);

const NONE: ReadonlySet<string> = new Set();

function blocked(f: Finding, where: string): Block {
  return { status: 403, reason: `detector ${f.detector} matched in ${where} (${f.label}: ${f.excerpt})` };
}

/** Scan the full URL and the headers that will be forwarded (not those egress replaces). */
export function inspectHead(policy: CompiledPolicy, url: string, headers: OutgoingHttpHeaders, replaced: ReadonlySet<string> = NONE): Block | null {
  const inUrl = policy.scanner.scan(url);
  if (inUrl) return blocked(inUrl, "url");
  // A name can carry data too. Names arrive lower-cased, which loses nothing for an
  // all-upper-case format (AWS key ids), so the upper-cased names are scanned as well.
  const names = Object.keys(headers).join("\n");
  const inName = policy.scanner.scan(names) ?? policy.scanner.scan(names.toUpperCase());
  if (inName) return blocked(inName, "a header name");
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || replaced.has(name)) continue;
    const scanner: Scanner = ECHO_HEADERS.has(name) ? policy.echoScanner : policy.scanner;
    for (const v of Array.isArray(value) ? value : [String(value)]) {
      // "name: value" so detectors keyed by a field name (AWS secret keys) see the name.
      const f = scanner.scan(`${name}: ${v}`);
      if (f) return blocked(f, `header ${name}`);
    }
  }
  return null;
}

/** Read the whole request body, or a 413 block once it passes `max` bytes. */
export function readBody(req: IncomingMessage, max = MAX_BODY_BYTES): Promise<Buffer | Block> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.off("data", onData);
        req.resume(); // drain; the response says why and closes the connection
        resolve({ status: 413, reason: `request body is over ${max / 1048576} MiB, too large to scan` });
        return;
      }
      chunks.push(c);
    };
    req.on("data", onData);
    req.on("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on("error", reject);
  });
}

const inflaters: Record<string, (b: Buffer, o: zlib.ZlibOptions) => Promise<Buffer>> = {
  gzip: promisify(zlib.gunzip),
  "x-gzip": promisify(zlib.gunzip),
  deflate: promisify(zlib.inflate),
  br: promisify(zlib.brotliDecompress) as (b: Buffer, o: zlib.ZlibOptions) => Promise<Buffer>,
};

/** Undo Content-Encoding (applied in order, so undone in reverse), or say why not. */
async function decode(body: Buffer, contentEncoding: string | undefined): Promise<Buffer | Block> {
  if (!contentEncoding) return body;
  const codings = contentEncoding.split(",").map((c) => c.trim().toLowerCase()).filter((c) => c && c !== "identity");
  let out = body;
  for (const coding of codings.reverse()) {
    const inflate = inflaters[coding];
    if (!inflate) return { status: 403, reason: `request body has content-encoding ${coding}, which the firewall cannot scan` };
    try {
      out = await inflate(out, { maxOutputLength: MAX_DECODED_BYTES });
    } catch (e) {
      if (e instanceof RangeError) return { status: 413, reason: `request body inflates to over ${MAX_DECODED_BYTES / 1048576} MiB, too large to scan` };
      return { status: 403, reason: `request body is not valid ${coding} (${(e as Error).message}), so it cannot be scanned` };
    }
  }
  return out;
}

/**
 * Scan a buffered body. Decoded as latin1: one char per byte, binary-safe and cheap. A
 * compressed body is scanned decoded and also as sent: inflate and brotli stop at the end
 * of their stream and ignore what follows, and the upstream gets those bytes all the same
 * (or gets the body undecoded when the Connection header strips Content-Encoding).
 */
export async function inspectBody(policy: CompiledPolicy, body: Buffer, contentEncoding: string | undefined, offThread?: OffThreadScanner): Promise<Block | null> {
  if (body.length === 0) return null;
  const plain = await decode(body, contentEncoding);
  if (!Buffer.isBuffer(plain)) return plain;
  const texts = plain === body ? [plain] : [plain, body];
  const f = offThread && plain.length >= OFF_THREAD_BYTES ? await offThread.scan(policy.scannerOptions, policy.scanner, texts) : scanHere(policy.scanner, texts);
  return f ? blocked(f, "body") : null;
}
