// Keeping an injected credential out of what a routed upstream sends back. An upstream
// that echoes request headers (a debug endpoint, an error page quoting the Authorization
// header, a WebSocket echo) would otherwise hand the agent the real token it must never
// hold. Every spelling egress itself sent (the token, and for basic auth its base64 form)
// is overwritten with a mask of the same length, so Content-Length and WebSocket frame
// lengths stay valid. Compressed bodies cannot be searched as they stream, so routed
// requests ask for identity and an encoded answer is decoded first (see server.ts).
import { Buffer } from "node:buffer";
import { Transform, type TransformCallback } from "node:stream";
import { RELAY_HIGH_WATER_MARK } from "../../lib/http/limits.ts";

const MASK = "[egress-redacted]";

/** Secrets shorter than this are not searched for: a short one would mask ordinary text. */
const MIN_SECRET_LENGTH = 8;

/** One spelling to mask: its bytes (bodies) and those bytes as latin1 text (header values). */
export interface Secret {
  bytes: Buffer;
  latin1: string;
}

/**
 * How an upstream commonly quotes a value it echoes: JSON with "/" escaped (PHP, Java),
 * percent-encoded in a URL or a Location header (either case of hex digits). A token with
 * "/", "+" or "=" (base64) is spelled differently in each, and the agent decodes them all.
 */
function echoedSpellings(form: string): string[] {
  const json = JSON.stringify(form).slice(1, -1);
  const url = encodeURIComponent(form);
  return [form, json, json.replaceAll("/", "\\/"), url, url.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())];
}

/** The spellings to mask (each form as sent and as echoed), longest first, leaving out
 * those too short to search for. */
export function secretForms(forms: Iterable<string>): Secret[] {
  const unique = new Set([...forms].flatMap(echoedSpellings).filter((f) => f.length >= MIN_SECRET_LENGTH));
  return [...unique]
    .map((f) => Buffer.from(f, "utf8"))
    .sort((a, b) => b.length - a.length)
    .map((bytes) => ({ bytes, latin1: bytes.toString("latin1") }));
}

/** Nothing held back (shared: it has no bytes to write into). */
const NOTHING = Buffer.alloc(0);

function maskOf(length: number): Buffer {
  return Buffer.alloc(length, MASK);
}

/** Mask every whole occurrence in `data`; returns `data` itself when nothing matched. */
export function maskAll(data: Buffer, secrets: readonly Secret[]): Buffer {
  let out = data;
  for (const { bytes: s } of secrets) {
    for (let at = out.indexOf(s); at !== -1; at = out.indexOf(s, at + s.length)) {
      if (out === data) out = Buffer.from(data); // never write into a buffer a socket handed us
      maskOf(s.length).copy(out, at);
    }
  }
  return out;
}

/** A header value with every secret masked (node hands header bytes over as latin1 characters). */
export function maskHeaderValue(value: string, secrets: readonly Secret[]): string {
  // The common case, no secret in the value, costs a string search per secret, no copies.
  if (!secrets.some((s) => value.includes(s.latin1))) return value;
  return maskAll(Buffer.from(value, "latin1"), secrets).toString("latin1");
}

/**
 * Header pairs with every secret masked in the values. A header whose name holds a secret
 * is dropped: a name cannot be masked into something valid, and it reaches the agent
 * lower-cased at best, so it is compared without case.
 */
export function maskedHeaders(pairs: [string, string][], secrets: readonly Secret[]): [string, string][] {
  if (!secrets.length) return pairs;
  const lower = secrets.map((s) => s.latin1.toLowerCase());
  return pairs
    .filter(([name]) => !lower.some((s) => name.toLowerCase().includes(s)))
    .map(([name, value]) => [name, maskHeaderValue(value, secrets)]);
}

/** How many bytes at the end of `data` are the start of some secret (and so must wait). */
function pendingPrefix(data: Buffer, secrets: readonly Secret[]): number {
  let hold = 0;
  for (const { bytes: s } of secrets) {
    for (let k = Math.min(s.length - 1, data.length); k > hold; k--) {
      // The first byte before any slicing: this runs on every chunk of every routed answer.
      if (data[data.length - k] === s[0] && data.subarray(data.length - k).equals(s.subarray(0, k))) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}

/**
 * Masks every secret in a stream of chunks, even one split across them. Only a chunk's
 * tail that could begin a secret is held back for the next chunk, so a streamed answer
 * (server-sent events) is not delayed by a fixed window.
 */
export class SecretMasker {
  #carry: Buffer = NOTHING;

  constructor(private readonly secrets: readonly Secret[]) {}

  /** What of `chunk` (and the held tail) can go on now, masked. */
  push(chunk: Buffer): Buffer {
    const data = maskAll(this.#carry.length ? Buffer.concat([this.#carry, chunk]) : chunk, this.secrets);
    const hold = pendingPrefix(data, this.secrets);
    this.#carry = hold ? Buffer.from(data.subarray(data.length - hold)) : NOTHING;
    return hold ? data.subarray(0, data.length - hold) : data;
  }

  /** The held tail: the stream ended, so it cannot become a secret any more. */
  flush(): Buffer {
    const rest = this.#carry;
    this.#carry = NOTHING;
    return rest;
  }
}

/** A byte stream with every secret masked (SecretMasker as a Transform). */
export class Redactor extends Transform {
  readonly #masker: SecretMasker;

  constructor(secrets: readonly Secret[]) {
    // A record at a time in and out without a 'drain' between them (RELAY_HIGH_WATER_MARK).
    super({ highWaterMark: RELAY_HIGH_WATER_MARK });
    this.#masker = new SecretMasker(secrets);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    done(null, this.#masker.push(chunk));
  }

  override _flush(done: TransformCallback): void {
    const rest = this.#masker.flush();
    done(null, rest.length ? rest : undefined);
  }
}
