// The DLP scanner shared by the firewall (requests) and git-gate (pushed content).
// Three passes over the text, each one precompiled regex:
//   1. the literal values of sensitive env vars in all their encoded forms;
//   2. every known credential format at once (one alternation, one capture group each);
//   3. random-looking tokens (entropy), skipping spans the first two passes claimed.
// Known formats of a disabled detector still claim their span, so switching "jwt" off
// lets a JWT through instead of the entropy check blocking its signature. The encodings a
// server undoes on its own are undone here too, so a key does not slip out merely by
// being encoded: text naming quoted-printable is scanned again decoded from it, text
// with %XX escapes percent-decoded, then JSON string escapes (\uXXXX, \/) decoded, and
// base64 tokens that decode to text get the whole scan again (entropy included: a random
// token wrapped in Basic auth is still one), down to a few levels of nesting. So does the payload of a certificate, signature or
// data: URI, whatever it decodes to (blocks.ts). UTF-16 text and hex tokens are read for
// known formats and sensitive values too.
import { Buffer } from "node:buffer";
import type { Detector } from "../sidecar-config.ts";
import { printableByte, readBlock } from "./blocks.ts";
import { BENIGN_SOURCES, type Pattern, PATTERNS } from "./detectors.ts";
import { forEachToken, highEntropy, MIN_TOKEN } from "./entropy.ts";
import { MIN_SENSITIVE_LENGTH, sensitiveForms } from "./sensitive.ts";

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
  /** Names of sensitive values ignored because they are too short to match safely. */
  readonly ignoredSensitive: readonly string[];
}

interface Span {
  start: number;
  end: number;
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");

/** Keep a few leading characters (for known formats: the prefix) and the length. */
export function redact(match: string, keep = 4): string {
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

/** UTF-16 text, read as latin1: every other byte a NUL. Checked for known formats and
 * sensitive values with the NULs taken out. */
const UTF16 = /(?:[\x20-\x7e]\x00){4}|(?:\x00[\x20-\x7e]){4}/;
const isUtf16 = (text: string) => text.includes("\x00") && UTF16.test(text);

const HEX = /^(?:[0-9A-Fa-f]{2})+$/;

// A multipart part (or a mail) sent quoted-printable: the server's MIME reader turns "=41"
// into "A" and drops "=" line breaks. Only where the text names that encoding: "=AB"
// is ordinary in query strings and config, and decoding it there would split tokens.
const QUOTED_PRINTABLE = /quoted-printable/i;
function quotedPrintableDecode(text: string): string {
  return text.replace(/=(?:\r?\n|([0-9A-Fa-f]{2}))/g, (_, h: string | undefined) => (h ? String.fromCharCode(parseInt(h, 16)) : ""));
}

/** Decoded forms scanned after the text itself, each applied to the previous result. */
const DECODINGS: readonly { test: RegExp; decode: (t: string) => string; how: string }[] = [
  { test: QUOTED_PRINTABLE, decode: quotedPrintableDecode, how: " (quoted-printable)" },
  { test: PERCENT, decode: percentDecode, how: " (URL-encoded)" },
  { test: JSON_ESCAPE, decode: jsonUnescape, how: " (JSON-decoded)" },
];

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
 * far are binary, which is within a few bytes for images and random keys.
 */
function base64Text(token: string): string | null {
  const n = token.length - (token.endsWith("==") ? 2 : token.endsWith("=") ? 1 : 0);
  let seen = 0;
  let bad = 0;
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
      if (!printableByte((acc >> bits) & 0xff) && ++bad > 2 + seen / 20) return null;
    }
  }
  return Buffer.from(token, /[-_]/.test(token) ? "base64url" : "base64").toString("latin1");
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
  const sensitiveRe = formOf.size
    ? new RegExp([...formOf.keys()].sort((a, b) => b.length - a.length).map(escapeRegex).join("|"), "g")
    : null;

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
        if (block.genuine) found.benign.push(span);
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
    if (isUtf16(text)) {
      exact(text.replaceAll("\x00", ""), ` (UTF-16)${how}`, depth, { spans: [], benign: [] }, out, stopAtFirst);
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
    if (text.length < MIN_TOKEN) return;
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
    });
  }

  function run(text: string, stopAtFirst: boolean): Finding[] {
    const out: Finding[] = [];
    scanInto(text, "", 1, out, stopAtFirst);
    return out;
  }

  return {
    scan: (text) => run(text, true)[0] ?? null,
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
