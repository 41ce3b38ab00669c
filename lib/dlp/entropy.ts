// The high-entropy check: flags random-looking tokens that no known format claims. Tuned
// to let ordinary traffic through (see testdata/negative.json): it ignores hex (git SHAs,
// digests, UUIDs), tokens without upper case, lower case and at least two digits
// (identifiers, paths, slugs), SRI and go.sum hashes, SSH wire-format public keys, and
// tokens outside 32..200 characters (shorter ones are ids, longer ones are data blobs:
// images, thinking signatures, encrypted payloads). What remains must reach a threshold
// a little below the entropy a random base62/base64 string of that length shows.

import { Buffer } from "node:buffer";

export const MIN_TOKEN = 32;
export const MAX_TOKEN = 200;

const TOKEN_CHAR = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-") TOKEN_CHAR[c.charCodeAt(0)] = 1;

/**
 * Calls `visit(start, end)` for every run of [A-Za-z0-9+/_-] of at least `min` chars
 * (plus up to two '=' of padding, so "key=value" still splits); stops when it returns
 * true. A table-driven loop: about three times faster than the equivalent global regex.
 */
export function forEachToken(text: string, visit: (start: number, end: number) => boolean, min = MIN_TOKEN): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c >= 128 || !TOKEN_CHAR[c]) {
      i++;
      continue;
    }
    const start = i;
    while (i < n) {
      const d = text.charCodeAt(i);
      if (d >= 128 || !TOKEN_CHAR[d]) break;
      i++;
    }
    if (i - start < min) continue;
    let end = i;
    while (end < n && end - i < 2 && text.charCodeAt(end) === 61) end++;
    if (visit(start, end)) return;
    i = end;
  }
}

// Scratch counts reused across calls (JS is single-threaded; shannon() never re-enters).
const counts = new Uint16Array(128);

/** Shannon entropy in bits per character (ASCII tokens only). */
function shannon(token: string): number {
  const n = token.length;
  counts.fill(0);
  for (let i = 0; i < n; i++) counts[token.charCodeAt(i) & 127]!++;
  let h = 0;
  for (let c = 0; c < 128; c++) {
    const k = counts[c]!;
    if (k) {
      const p = k / n;
      h -= p * Math.log2(p);
    }
  }
  return h;
}

/**
 * The entropy a token of length n must reach. A random base62 string of length n shows
 * about log2(62) - 60/n bits (small-sample bias); the 0.2 margin keeps the miss rate for
 * random tokens near 1% while English-like identifiers stay well below.
 */
function threshold(n: number): number {
  return Math.log2(62) - 60 / n - 0.2;
}

const ID_PREFIX = /^[a-z]{2,12}[_-](?=[A-Za-z0-9])/; // toolu_, msg_, chatcmpl-: ids, not secrets
// Digests in their usual spellings, each its exact length: a prefix alone exempts nothing.
const SRI = /^(?:sha1-[A-Za-z0-9+/]{27}=|sha256-[A-Za-z0-9+/]{43}=|sha384-[A-Za-z0-9+/]{64}|sha512-[A-Za-z0-9+/]{86}==)$/;
const GO_SUM = /^[A-Za-z0-9+/]{43}=$/; // after "h1:"

/** An SSH wire-format public key blob: a length-prefixed algorithm name ("ssh-ed25519"). */
function sshKeyBlob(core: string): boolean {
  const head = Buffer.from(core.slice(0, 64), "base64"); // room for "sk-ecdsa-sha2-nistp256@openssh.com"
  if (head.length < 8) return false;
  const n = head.readUInt32BE(0);
  return n >= 7 && n <= 44 && head.length >= 4 + n && /^(?:ssh|ecdsa|sk|rsa)-[a-z0-9@.-]+$/.test(head.subarray(4, 4 + n).toString("latin1"));
}

/** Returns the entropy when `token` (found at `start` in `text`) looks like a random secret. */
export function highEntropy(text: string, start: number, token: string): number | null {
  if (SRI.test(token)) return null;
  if (start >= 3 && text.startsWith("h1:", start - 3) && GO_SUM.test(token)) return null;
  const core = token.replace(ID_PREFIX, "").replace(/=+$/, "");
  const n = core.length;
  if (n < MIN_TOKEN || n > MAX_TOKEN) return null;
  if (core.startsWith("AAAA") && sshKeyBlob(core)) return null;
  let upper = 0;
  let lower = 0;
  let digits = 0;
  for (let i = 0; i < n; i++) {
    const c = core.charCodeAt(i);
    if (c >= 65 && c <= 90) upper++;
    else if (c >= 97 && c <= 122) lower++;
    else if (c >= 48 && c <= 57) digits++;
  }
  if (!upper || !lower || digits < 2) return null;
  const h = shannon(core);
  return h >= threshold(n) ? h : null;
}
