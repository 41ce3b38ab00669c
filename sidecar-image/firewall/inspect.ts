// What the firewall checks in one request before it may leave: the URL, every forwarded
// header, and the body (decompressed when the client compressed it). A non-null result is
// the block: HTTP status plus the reason for the 403 body and the log line. Reasons name
// the detector and where it matched, with the scanner's redacted excerpt, never the secret.
import { Buffer } from "node:buffer";
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import zlib from "node:zlib";
import type { Finding, Scanner } from "../../lib/dlp/mod.ts";
import { type BodyBudget, type BodyCharge, overBudgetReason, RETRY_AFTER_S } from "./body-budget.ts";
import { OFF_THREAD_BYTES, type OffThreadScanner, scanHere } from "./off-thread.ts";
import type { CompiledPolicy } from "./policy.ts";

export interface Block {
  status: number;
  reason: string;
  /** Set when the request is refused for now only (the body budget, body-budget.ts), not
   * by the policy: answered with Retry-After, and neither labelled nor recorded as a block. */
  retryAfterS?: number;
}

function overBudget(budget: BodyBudget): Block {
  return { status: 503, reason: overBudgetReason(budget), retryAfterS: RETRY_AFTER_S };
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

/**
 * Read the whole request body, each piece charged to `charge` as it arrives: a 413 block
 * once it passes `max` bytes, a 503 once the budget has no room for the next piece (what
 * was read is then dropped and its charge given back at once).
 */
export function readBody(req: IncomingMessage, max = MAX_BODY_BYTES, charge?: BodyCharge): Promise<Buffer | Block> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (block: Block) => {
      req.off("data", onData);
      req.resume(); // drain; the response says why and closes the connection
      chunks.length = 0;
      charge?.release();
      resolve(block);
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > max) return stop({ status: 413, reason: `request body is over ${max / 1048576} MiB, too large to scan` });
      if (charge && !charge.take(c.length)) return stop(overBudget(charge.budget));
      chunks.push(c);
    };
    req.on("data", onData);
    req.on("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on("error", reject);
  });
}

type Engine = zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress;
const inflaters: Record<string, () => Engine> = {
  gzip: () => zlib.createGunzip(),
  "x-gzip": () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
};

/**
 * `input` run through `engine` (as node's one-shot gunzip does, which is this stream
 * inside), each piece of output charged to `charge` as it comes: the output, and how much
 * of the input the decoder read; a 413 past MAX_DECODED_BYTES, a 503 past the budget.
 */
function inflate(engine: Engine, input: Buffer, coding: string, charge?: BodyCharge): Promise<{ out: Buffer; used: number } | Block> {
  return new Promise((resolve) => {
    const pieces: Buffer[] = [];
    let size = 0;
    const stop = (block: Block) => {
      engine.destroy();
      pieces.length = 0;
      resolve(block);
    };
    engine.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_DECODED_BYTES) return stop({ status: 413, reason: `request body inflates to over ${MAX_DECODED_BYTES / 1048576} MiB, too large to scan` });
      if (charge && !charge.take(c.length)) return stop(overBudget(charge.budget));
      pieces.push(c);
    });
    engine.on("error", (e) => resolve({ status: 403, reason: `request body is not valid ${coding} (${e.message}), so it cannot be scanned` }));
    engine.on("end", () => resolve({ out: Buffer.concat(pieces, size), used: engine.bytesWritten }));
    engine.end(input);
  });
}

/**
 * Undo Content-Encoding (applied in order, so undone in reverse), or say why not. Bytes
 * after the end of the compressed data are refused: decoders differ on them (node's gunzip
 * stops at zero padding between members, Python's skips it and reads the next member), so
 * what the firewall scanned need not be what the server reads.
 */
async function decode(body: Buffer, contentEncoding: string | undefined, charge?: BodyCharge): Promise<Buffer | Block> {
  if (!contentEncoding) return body;
  const codings = contentEncoding.split(",").map((c) => c.trim().toLowerCase()).filter((c) => c && c !== "identity");
  let out = body;
  for (const coding of codings.reverse()) {
    const engine = inflaters[coding];
    if (!engine) return { status: 403, reason: `request body has content-encoding ${coding}, which the firewall cannot scan` };
    const r = await inflate(engine(), out, coding, charge);
    if (!("out" in r)) return r;
    const rest = out.length - r.used;
    if (rest > 0) return { status: 403, reason: `request body has ${rest} bytes after its ${coding} data, which servers read differently, so it cannot be scanned` };
    out = r.out;
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
 * scanned decoded from it too. What the scan makes of the body (its decoded forms, their
 * copies for the scan worker) is charged to `budget` while the scan runs: a 503 when it
 * has no room for them.
 */
export async function inspectBody(
  policy: CompiledPolicy,
  body: Buffer,
  headers: { "content-encoding"?: string; "content-type"?: string },
  o: { offThread?: OffThreadScanner; budget?: BodyBudget } = {},
): Promise<Block | null> {
  if (body.length === 0) return null;
  const scratch = o.budget?.charge();
  try {
    const plain = await decode(body, headers["content-encoding"], scratch);
    if (!Buffer.isBuffer(plain)) return plain;
    const texts = plain === body ? [plain] : [plain, body];
    const charset = declaredCharset(headers["content-type"], plain);
    if (charset !== null && !Buffer.isBuffer(charset)) return charset;
    if (charset) texts.push(charset);
    if (scratch && !scratch.take(charset?.length ?? 0)) return overBudget(scratch.budget);
    const away = o.offThread && plain.length >= OFF_THREAD_BYTES;
    // The worker gets copies of every text (off-thread.ts), held until it answers.
    if (away && scratch && !scratch.take(texts.reduce((n, t) => n + t.length, 0))) return overBudget(scratch.budget);
    const f = away ? await o.offThread!.scan(policy.scannerOptions, policy.scanner, texts) : scanHere(policy.scanner, texts);
    return f ? blocked(f, "body") : null;
  } finally {
    scratch?.release();
  }
}
