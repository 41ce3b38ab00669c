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
  // A name can carry data too; names arrive lower-cased (scanName).
  const inName = policy.scanner.scanName(Object.keys(headers).join("\n"));
  if (inName) return blocked(inName, "a header name");
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || replaced.has(name)) continue;
    const scanner: Scanner = ECHO_HEADERS.has(name) ? policy.echoScanner : policy.scanner;
    for (const v of Array.isArray(value) ? value : [String(value)]) {
      // "name: value" so detectors keyed by a field name (AWS secret keys) see the name.
      const f = scanner.scan(`${name}: ${v}`) ?? basicCredential(scanner, name, v);
      if (f) return blocked(f, `header ${name}`);
    }
  }
  return null;
}

/**
 * A Basic credential as the server decodes it: whatever is not a base64 digit skipped
 * (werkzeug's b64decode, node's Buffer), so base64 broken up by spaces, or too short for a
 * token of its own, is read whole.
 */
function basicCredential(scanner: Scanner, name: string, value: string): Finding | null {
  if (name !== "authorization" && name !== "proxy-authorization") return null;
  const m = /^\s*basic\s+(.*)$/is.exec(value);
  return m ? scanner.scan(Buffer.from(m[1]!, "base64").toString("latin1")) : null;
}

/**
 * A block when the body is sent with a transfer coding besides chunked ("Transfer-Encoding:
 * gzip, chunked"): node's parser takes off only the chunking, and the firewall forwards
 * the body with a Content-Length, so the server would get the compressed bytes, scanned as
 * they are. Refused as nginx refuses them (501, RFC 9112 6.1); clients do not send them.
 */
export function transferCoding(headers: { "transfer-encoding"?: string }): Block | null {
  const codings = (headers["transfer-encoding"] ?? "").split(",").map((c) => c.trim().toLowerCase());
  const other = codings.find((c) => c && c !== "chunked");
  return other === undefined ? null : { status: 501, reason: `request body has transfer-encoding ${other}, which the firewall does not undo (only chunked), so it cannot be scanned` };
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

type Inflate = (b: Buffer, o: zlib.ZlibOptions & { info: true }) => Promise<{ buffer: Buffer; engine: { bytesWritten: number } }>;
// With `info`, node's callback gets the output and the engine (how much input it read).
const withInfo = (f: typeof zlib.gunzip | typeof zlib.brotliDecompress) => promisify(f) as unknown as Inflate;
const inflaters: Record<string, Inflate> = {
  gzip: withInfo(zlib.gunzip),
  "x-gzip": withInfo(zlib.gunzip),
  deflate: withInfo(zlib.inflate),
  br: withInfo(zlib.brotliDecompress),
};

/**
 * Undo Content-Encoding (applied in order, so undone in reverse), or say why not. Bytes
 * after the end of the compressed data are refused: decoders differ on them (node's gunzip
 * stops at zero padding between members, Python's skips it and reads the next member), so
 * what the firewall scanned need not be what the server reads.
 */
async function decode(body: Buffer, contentEncoding: string | undefined): Promise<Buffer | Block> {
  if (!contentEncoding) return body;
  const codings = contentEncoding.split(",").map((c) => c.trim().toLowerCase()).filter((c) => c && c !== "identity");
  let out = body;
  for (const coding of codings.reverse()) {
    const inflate = inflaters[coding];
    if (!inflate) return { status: 403, reason: `request body has content-encoding ${coding}, which the firewall cannot scan` };
    try {
      const r = await inflate(out, { maxOutputLength: MAX_DECODED_BYTES, info: true });
      const rest = out.length - r.engine.bytesWritten;
      if (rest > 0) return { status: 403, reason: `request body has ${rest} bytes after its ${coding} data, which servers read differently, so it cannot be scanned` };
      out = r.buffer;
    } catch (e) {
      if (e instanceof RangeError) return { status: 413, reason: `request body inflates to over ${MAX_DECODED_BYTES / 1048576} MiB, too large to scan` };
      return { status: 403, reason: `request body is not valid ${coding} (${(e as Error).message}), so it cannot be scanned` };
    }
  }
  return out;
}

// Charsets whose text the scanner reads from the bytes as they are: ASCII-compatible ones
// (every credential format is ASCII), and UTF-16/32 (scanner.ts takes out the NULs).
const READ_AS_IS = new Set(["utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1", "l1", "windows-1252", "cp1252", "utf-16", "utf-16le", "utf-16be", "ucs-2", "utf-32", "utf-32le", "utf-32be"]);

/**
 * The body as the server will read it when Content-Type names another charset (a server
 * decodes it by itself: body-parser, iconv), or a block when the firewall cannot decode
 * that charset (UTF-7, EBCDIC, iconv's "base64"): its text could hide anything.
 */
function declaredCharset(contentType: string | undefined, body: Buffer): Buffer | Block | null {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? "")?.[1]?.toLowerCase();
  if (charset === undefined || READ_AS_IS.has(charset)) return null;
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charset);
  } catch {
    return { status: 403, reason: `request body has charset ${JSON.stringify(charset)}, which the firewall cannot read, so it cannot be scanned` };
  }
  return Buffer.from(decoder.decode(body), "utf8");
}

/**
 * Scan a buffered body. Decoded as latin1: one char per byte, binary-safe and cheap. A
 * compressed body is scanned decoded and also as sent (the upstream gets the body undecoded
 * when the Connection header strips Content-Encoding); a body in a charset of its own is
 * scanned decoded from it too.
 */
export async function inspectBody(
  policy: CompiledPolicy,
  body: Buffer,
  headers: { "content-encoding"?: string; "content-type"?: string },
  offThread?: OffThreadScanner,
): Promise<Block | null> {
  if (body.length === 0) return null;
  const plain = await decode(body, headers["content-encoding"]);
  if (!Buffer.isBuffer(plain)) return plain;
  const texts = plain === body ? [plain] : [plain, body];
  const charset = declaredCharset(headers["content-type"], plain);
  if (charset !== null && !Buffer.isBuffer(charset)) return charset;
  if (charset) texts.push(charset);
  const f = offThread && plain.length >= OFF_THREAD_BYTES ? await offThread.scan(policy.scannerOptions, policy.scanner, texts) : scanHere(policy.scanner, texts);
  return f ? blocked(f, "body") : null;
}
