// The DLP scanner shared by the firewall (requests) and git-gate (pushed content).
// Three passes over the text, each one precompiled regex:
//   1. the literal values of sensitive env vars in all their encoded forms;
//   2. every known credential format at once (one alternation, one capture group each);
//   3. random-looking tokens (entropy), skipping spans the first two passes claimed.
// Known formats of a disabled detector still claim their span, so switching "jwt" off
// lets a JWT through instead of the entropy check blocking its signature. The encodings a
// server undoes on its own are undone here too, so a key does not slip out merely by
// being encoded: text naming quoted-printable is scanned again decoded from it, text
// with %XX escapes percent-decoded, then JSON string escapes (\uXXXX, \/) decoded, then
// XML/HTML numeric character references (&#103;), then UTF-7 where the text names it; and
// base64 tokens that decode to text get the whole scan again (entropy included: a random
// token wrapped in Basic auth is still one), down to a few levels of nesting. So does the
// payload of a certificate, signature or data: URI, or of a MIME part sent base64 (line
// wrapped), whatever it decodes to (blocks.ts); base64 wrapped across lines anywhere else
// is joined as a decoder joins it (wrapped-base64.ts). UTF-16 and UTF-32 text, hex tokens, and
// base64 runs too short for the entropy check (an AWS key id is 28 characters of it) are
// read for known formats and sensitive values.
import { Buffer } from "node:buffer";
import type { Detector } from "../sidecar-config.ts";
import { readBlock } from "./blocks.ts";
import { BENIGN_SOURCES, type Pattern, PATTERNS } from "./detectors.ts";
import { forEachToken, highEntropy, MAX_TOKEN, MIN_TOKEN } from "./entropy.ts";
import { MIN_SENSITIVE_LENGTH, sensitiveForms } from "./sensitive.ts";
import { printableByte, wrappedBase64 } from "./wrapped-base64.ts";

export interface Finding {
  detector: Detector;
  /** What was found, e.g. "GitHub token" or "value of sensitive env GH_TOKEN". */
  label: string;
  /** A redacted excerpt (a few leading characters and the length), never the secret. */
  excerpt: string;
}

export interface ScannerOptions {
  disabled?: readonly Detector[];
  /** Literal values that must never leave, named for messages (the env var name). */
  sensitive?: readonly { name: string; value: string }[];
}

export interface Scanner {
  /** The first finding, or null when the text may pass. */
  scan(text: string): Finding | null;
  scanAll(text: string): Finding[];
  /**
   * A name that arrives lower-cased (a host, header names): scanned as is, upper-cased (an
   * all-upper-case format such as an AWS key id loses nothing), and for sensitive values
   * in any case, since lower-casing a password leaves most of it readable.
   */
  scanName(name: string): Finding | null;
  /** Names of sensitive values ignored because they are too short to match safely. */
  readonly ignoredSensitive: readonly string[];
}

interface Span {
  start: number;
  end: number;
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");

/** Keep a few leading characters (for known formats: the prefix) and the length. */
function redact(match: string, keep = 4): string {
  const shown = match.slice(0, Math.min(keep, Math.floor(match.length / 4)));
  return `${shown}…(${match.length} chars)`;
}

const PERCENT = /%[0-9A-Fa-f]{2}/;
function percentDecode(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

// JSON parsers undo these: "\u0067hp_..." and "wJalr\/K7MD..." reach the server whole.
const JSON_ESCAPE = /\\(?:u[0-9A-Fa-f]{4}|\/)/;
function jsonUnescape(text: string): string {
  return text.replace(/\\(?:u([0-9A-Fa-f]{4})|\/)/g, (_, h: string | undefined) => (h ? String.fromCharCode(parseInt(h, 16)) : "/"));
}

/** Wide text read as latin1: UTF-32 (three NULs to each ASCII byte) or UTF-16 (one).
 * Checked for known formats and sensitive values with the NULs taken out; a JSON parser
 * detects either from the bytes alone, so a missing charset hides nothing. */
const UTF32 = /(?:[\x20-\x7e]\x00\x00\x00){4}|(?:\x00\x00\x00[\x20-\x7e]){4}/;
const UTF16 = /(?:[\x20-\x7e]\x00){4}|(?:\x00[\x20-\x7e]){4}/;
function wideText(text: string): string | null {
  if (!text.includes("\x00")) return null;
  return UTF32.test(text) ? " (UTF-32)" : UTF16.test(text) ? " (UTF-16)" : null;
}

const HEX = /^(?:[0-9A-Fa-f]{2})+$/;

// A multipart part (or a mail) sent quoted-printable: the server's MIME reader turns "=41"
// into "A" and drops "=" line breaks. Only where the text names that encoding: "=AB"
// is ordinary in query strings and config, and decoding it there would split tokens.
const QUOTED_PRINTABLE = /quoted-printable/i;
function quotedPrintableDecode(text: string): string {
  return text.replace(/=(?:\r?\n|([0-9A-Fa-f]{2}))/g, (_, h: string | undefined) => (h ? String.fromCharCode(parseInt(h, 16)) : ""));
}

// XML and HTML parsers expand numeric character references: "&#103;&#x68;p_" is "ghp_".
const CHAR_REF = /&#(?:[0-9]|[xX][0-9A-Fa-f])/;
function charRefDecode(text: string): string {
  return text.replace(/&#(?:([0-9]{1,7})|[xX]([0-9A-Fa-f]{1,6}));/g, (m, dec: string | undefined, hex: string | undefined) => {
    const code = dec !== undefined ? parseInt(dec, 10) : parseInt(hex!, 16);
    return code <= 0x10ffff ? String.fromCodePoint(code) : m;
  });
}

// UTF-7 writes anything as "+<base64 of UTF-16BE>-", which a server told the charset
// (body-parser, iconv) decodes by itself. Only where the text names it: "+" is ordinary.
const UTF7 = /utf-?7/i;
function utf7Decode(text: string): string {
  return text.replace(/\+([A-Za-z0-9+/]*)-?/g, (_, run: string) => {
    if (run === "") return "+";
    const bytes = Buffer.from(run, "base64");
    return bytes.subarray(0, bytes.length & ~1).swap16().toString("utf16le");
  });
}

/** Decoded forms scanned after the text itself, each applied to the previous result. */
const DECODINGS: readonly { test: RegExp; decode: (t: string) => string; how: string }[] = [
  { test: QUOTED_PRINTABLE, decode: quotedPrintableDecode, how: " (quoted-printable)" },
  { test: PERCENT, decode: percentDecode, how: " (URL-encoded)" },
  { test: JSON_ESCAPE, decode: jsonUnescape, how: " (JSON-decoded)" },
  { test: CHAR_REF, decode: charRefDecode, how: " (character references)" },
  { test: UTF7, decode: utf7Decode, how: " (UTF-7)" },
];

// A MIME part (multipart/form-data, a mail) sent base64 is wrapped at 76 characters, so
// no one token holds it; the server's MIME reader joins the lines and decodes the part.
// Its body runs from the blank line after its headers to the next boundary line.
const MIME_BASE64 = /content-transfer-encoding:[ \t]*base64[ \t]*\r?\n(?:[^\r\n]+\r?\n)*?\r?\n([\s\S]*?)(?=\r?\n--|$)/gi;

/** The decoded bodies of the base64 MIME parts in `text` (decoded as MIME readers do:
 * whatever is not a base64 digit is skipped). */
function mimeBase64Parts(text: string): string[] {
  if (!/content-transfer-encoding/i.test(text)) return [];
  return [...text.matchAll(MIME_BASE64)].map((m) => Buffer.from(m[1]!, "base64").toString("latin1"));
}

/** Shortest base64 run decoded for known formats (20 bytes of AWS key id are 28 chars). */
const MIN_BASE64_RUN = 20;

const BASE64 = " (base64-encoded)";

/** How deep base64 inside base64 is followed (base64 of base64 of a key is still found). */
const MAX_NESTING = 3;

// base64 and base64url digit values (both alphabets at once), -1 elsewhere.
const B64 = new Int8Array(128).fill(-1);
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".split("").forEach((c, i) => (B64[c.charCodeAt(0)] = i));
B64[43] = B64[45] = 62; // + -
B64[47] = B64[95] = 63; // / _

/**
 * The decoded text when `token` is base64 (either alphabet) of printable text, else
 * null. Decodes without allocating and gives up as soon as more than ~5% of the bytes so
 * far are binary, which is within a few bytes for images and random keys. NUL bytes are
 * let through the count and judged at the end: UTF-16 or UTF-32 text (PowerShell's
 * -EncodedCommand, a UTF-7 commit's base64 runs) is text, wide.
 */
function base64Text(token: string): string | null {
  const n = token.length - (token.endsWith("==") ? 2 : token.endsWith("=") ? 1 : 0);
  let seen = 0;
  let bad = 0;
  let nul = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < n; i++) {
    const v = B64[token.charCodeAt(i)]!;
    if (v < 0) return null;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      seen++;
      const byte = (acc >> bits) & 0xff;
      if (byte === 0) nul++;
      else if (!printableByte(byte) && ++bad > 2 + seen / 20) return null;
    }
  }
  const text = Buffer.from(token, /[-_]/.test(token) ? "base64url" : "base64").toString("latin1");
  return nul > 2 + seen / 20 && wideText(text) === null ? null : text;
}

/** Sorted, merged intervals. */
function disjoint(spans: Span[]): Span[] {
  if (spans.length < 2) return spans;
  spans.sort((a, b) => a.start - b.start);
  const out: Span[] = [{ ...spans[0]! }];
  for (const s of spans) {
    const last = out[out.length - 1]!;
    if (s.start <= last.end) last.end = Math.max(last.end, s.end);
    else out.push({ ...s });
  }
  return out;
}

export function createScanner(opts: ScannerOptions = {}): Scanner {
  const disabled = new Set<Detector>(opts.disabled ?? []);
  const entropyOn = !disabled.has("high_entropy");

  // Pass 1: sensitive literals, longest first so the most specific form names the match.
  const ignoredSensitive: string[] = [];
  const formOf = new Map<string, { name: string; how: string }>();
  if (!disabled.has("sensitive_env")) {
    for (const { name, value } of opts.sensitive ?? []) {
      if (value.length < MIN_SENSITIVE_LENGTH) {
        ignoredSensitive.push(name);
        continue;
      }
      for (const f of sensitiveForms(value)) if (!formOf.has(f.text)) formOf.set(f.text, { name, how: f.how });
    }
  }
  const sensitiveSource = [...formOf.keys()].sort((a, b) => b.length - a.length).map(escapeRegex).join("|");
  const sensitiveRe = formOf.size ? new RegExp(sensitiveSource, "g") : null;
  const anyCaseRe = formOf.size ? new RegExp(sensitiveSource, "i") : null;
  const formOfLower = new Map<string, { name: string; how: string }>();
  for (const [text, f] of formOf) if (!formOfLower.has(text.toLowerCase())) formOfLower.set(text.toLowerCase(), f);

  // Pass 2: one alternation; group i+1 is PATTERNS[i], later groups are benign spans.
  const knownRe = new RegExp([...PATTERNS.map((p) => p.source), ...BENIGN_SOURCES].map((s) => `(${s})`).join("|"), "g");

  /**
   * Known formats and sensitive values; the spans they claim go to `spans`. A benign block
   * (certificate, signature, data: URI) has its payload scanned as base64 content is, and
   * goes to `benign` when its payload is what it claims to be (blocks.ts).
   */
  function exact(text: string, how: string, depth: number, found: { spans: Span[]; benign: Span[] }, out: Finding[], stopAtFirst: boolean): void {
    if (sensitiveRe) {
      sensitiveRe.lastIndex = 0;
      for (let m = sensitiveRe.exec(text); m; m = sensitiveRe.exec(text)) {
        const f = formOf.get(m[0])!;
        found.spans.push({ start: m.index, end: m.index + m[0].length });
        out.push({ detector: "sensitive_env", label: `value of sensitive env ${f.name}${f.how}${how}`, excerpt: `(${m[0].length} chars)` });
        if (stopAtFirst) return;
      }
    }
    knownRe.lastIndex = 0;
    const followers = new Map<Pattern, (text: string, end: number) => number | null>();
    for (let m = knownRe.exec(text); m; m = knownRe.exec(text)) {
      let g = 1;
      while (m[g] === undefined) g++;
      const p = PATTERNS[g - 1];
      let hit = m[0];
      if (p?.follow) {
        let follow = followers.get(p);
        if (!follow) followers.set(p, (follow = p.follow()));
        const end = follow(text, m.index + hit.length);
        if (end === null) {
          knownRe.lastIndex = m.index + 1;
          continue;
        }
        hit = text.slice(m.index, end);
        knownRe.lastIndex = end;
      }
      const span = { start: m.index, end: m.index + hit.length };
      if (!p) {
        const block = readBlock(hit);
        // The recursion runs knownRe itself: resume this scan where it stood.
        scanPayload(block.payload.toString("latin1"), depth, out, stopAtFirst);
        if (stopAtFirst && out.length) return;
        if (block.genuine) {
          // Spared but for its header lines: a token written there is checked as any other.
          let from = span.start;
          for (const h of block.headers) {
            found.benign.push({ start: from, end: span.start + h.start });
            from = span.start + h.end;
          }
          found.benign.push({ start: from, end: span.end });
        }
        knownRe.lastIndex = m.index + 1; // known formats inside the block are still found
        continue;
      }
      if (p.accept && !p.accept(hit)) {
        knownRe.lastIndex = m.index + 1;
        continue;
      }
      found.spans.push(span);
      if (!disabled.has(p.detector)) {
        out.push({ detector: p.detector, label: `${p.label}${how}`, excerpt: p.excerpt ? p.excerpt(hit) : redact(hit) });
        if (stopAtFirst) return;
      } else {
        knownRe.lastIndex = m.index + 1; // a claimed span may still hide an enabled format
      }
    }
  }

  /** What base64 carried, scanned one level deeper (only for known formats at the limit). */
  function scanPayload(decoded: string, depth: number, out: Finding[], stopAtFirst: boolean): void {
    if (depth < MAX_NESTING) scanInto(decoded, BASE64, depth + 1, out, stopAtFirst);
    else exact(decoded, BASE64, depth, { spans: [], benign: [] }, out, stopAtFirst);
  }

  /** Everything `exact` finds, in the text and its decoded forms, then the entropy pass
   * over the most decoded form; base64 text found there is scanned the same way. */
  function scanInto(text: string, how: string, depth: number, out: Finding[], stopAtFirst: boolean): void {
    let found = { spans: [] as Span[], benign: [] as Span[] };
    exact(text, how, depth, found, out, stopAtFirst);
    if (stopAtFirst && out.length) return;
    const wide = wideText(text);
    if (wide) {
      exact(text.replaceAll("\x00", ""), `${wide}${how}`, depth, { spans: [], benign: [] }, out, stopAtFirst);
      if (stopAtFirst && out.length) return;
    }
    for (const part of mimeBase64Parts(text)) {
      scanPayload(part, depth, out, stopAtFirst);
      if (stopAtFirst && out.length) return;
    }
    for (const d of DECODINGS) {
      if (!d.test.test(text)) continue;
      // Entropy only means something on the decoded text: %2F and \/ split tokens.
      text = d.decode(text);
      found = { spans: [], benign: [] };
      exact(text, `${d.how}${how}`, depth, found, out, stopAtFirst);
      if (stopAtFirst && out.length) return;
    }
    // On the most decoded form: a form body's breaks arrive as %0A. The body of a
    // certificate or signature block (found.benign, in text order) had its payload
    // scanned already.
    const blocks = found.benign.length;
    let inBlock = 0;
    for (const block of wrappedBase64(text)) {
      while (inBlock < blocks && found.benign[inBlock]!.end <= block.start) inBlock++;
      const b = found.benign[inBlock];
      if (inBlock < blocks && b!.start <= block.start && block.end <= b!.end) continue;
      // A hex dump is read as a hex token is: for known formats and sensitive values.
      if (block.text && !block.hex) scanPayload(block.decoded, depth, out, stopAtFirst);
      else exact(block.decoded, block.hex ? ` (hex-encoded)${how}` : `${BASE64}${how}`, depth, { spans: [], benign: [] }, out, stopAtFirst);
      if (stopAtFirst && out.length) return;
      // Its lines are checked as the block, decoded whole: text, a hex dump, or a data blob
      // longer than the entropy check's tokens (a wrapped image). What is left is binary a
      // token's length, which may be a random key, or binary rows on one line, which may
      // be a list of them: its rows stay tokens.
      if (block.text || block.hex || (!block.flat && block.end - block.start > MAX_TOKEN)) found.benign.push({ start: block.start, end: block.end });
    }
    if (text.length < MIN_BASE64_RUN) return;
    const claimed = disjoint(found.spans);
    const benign = disjoint(found.benign);
    // Tokens come in text order, so one cursor walks each list of spans.
    let next = 0;
    let nextBenign = 0;
    forEachToken(text, (start, end) => {
      while (next < claimed.length && claimed[next]!.end <= start) next++;
      if (next < claimed.length && claimed[next]!.start < end) return false;
      // A benign block spares only tokens wholly inside it: one that runs on past its end
      // ("data:image/png;base64,...AAA_<key>") is checked like any other.
      while (nextBenign < benign.length && benign[nextBenign]!.end <= start) nextBenign++;
      const b = benign[nextBenign];
      if (b && b.start <= start && end <= b.end) return false;
      const token = text.slice(start, end);
      if (end - start < MIN_TOKEN) {
        // Too short for the entropy check, long enough to carry a key id in base64.
        const decoded = base64Text(token);
        if (decoded !== null) exact(decoded, `${BASE64}${how}`, depth, { spans: [], benign: [] }, out, stopAtFirst);
        return stopAtFirst && out.length > 0;
      }
      if (HEX.test(token)) {
        // A digest or an id, as a rule; but a hex dump of a key is the key.
        exact(Buffer.from(token, "hex").toString("latin1"), ` (hex-encoded)${how}`, depth, { spans: [], benign: [] }, out, stopAtFirst);
        return stopAtFirst && out.length > 0;
      }
      const decoded = base64Text(token);
      if (decoded !== null) {
        // base64 of text is data, not a random key itself; but what it carries is scanned
        scanPayload(decoded, depth, out, stopAtFirst);
        return stopAtFirst && out.length > 0;
      }
      if (!entropyOn) return false;
      const h = highEntropy(text, start, token);
      if (h === null) return false;
      out.push({ detector: "high_entropy", label: `high-entropy string (${h.toFixed(2)} bits/char)${how}`, excerpt: redact(token) });
      return stopAtFirst;
    }, MIN_BASE64_RUN);
  }

  function run(text: string, stopAtFirst: boolean): Finding[] {
    const out: Finding[] = [];
    scanInto(text, "", 1, out, stopAtFirst);
    return out;
  }

  function sensitiveAnyCase(name: string): Finding | null {
    const m = anyCaseRe?.exec(name);
    if (!m) return null;
    const f = formOfLower.get(m[0].toLowerCase())!;
    return { detector: "sensitive_env", label: `value of sensitive env ${f.name}${f.how} (case changed)`, excerpt: `(${m[0].length} chars)` };
  }

  return {
    scan: (text) => run(text, true)[0] ?? null,
    scanName: (name) => run(name, true)[0] ?? run(name.toUpperCase(), true)[0] ?? sensitiveAnyCase(name),
    scanAll(text) {
      const seen = new Set<string>();
      return run(text, false).filter((f) => {
        const key = `${f.detector}\0${f.label}\0${f.excerpt}`;
        return !seen.has(key) && seen.add(key);
      });
    },
    ignoredSensitive,
  };
}
