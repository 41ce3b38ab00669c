// The encoded forms under which a sensitive value may leave: as is, JSON-escaped,
// URL-encoded, form-encoded, hex, UTF-16, and base64 (standard and URL-safe) at each of the three
// alignments it can take inside a longer base64 stream. For an alignment only the
// characters fully determined by the value are kept, so the form matches wherever the
// value is embedded.
import { Buffer } from "node:buffer";

/** Values shorter than this are ignored: they would match ordinary traffic. */
export const MIN_SENSITIVE_LENGTH = 8;

interface Form {
  text: string;
  how: string;
}

function base64Cores(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let k = 0; k < 3; k++) {
    const enc = Buffer.concat([Buffer.alloc(k), bytes]).toString("base64");
    const start = [0, 2, 3][k]!;
    const end = 4 * Math.floor((k + bytes.length) / 3);
    const core = enc.slice(start, end);
    if (core.length >= MIN_SENSITIVE_LENGTH) out.push(core);
  }
  return out;
}

export function sensitiveForms(value: string): Form[] {
  const bytes = Buffer.from(value, "utf8");
  const forms: Form[] = [
    { text: value, how: "" },
    { text: JSON.stringify(value).slice(1, -1), how: " (JSON-escaped)" },
    { text: encodeURIComponent(value), how: " (URL-encoded)" },
    // Form encoding writes a space as "+". Matched against the percent-decoded text too
    // (scanner.ts), so any mix of %XX and plain characters around the "+" is found.
    { text: value.replaceAll(" ", "+"), how: " (form-encoded)" },
    // Bodies are decoded as latin1 (one char per byte); a non-ASCII value appears as its UTF-8 bytes.
    { text: bytes.toString("latin1"), how: "" },
    { text: bytes.toString("hex"), how: " (hex-encoded)" },
    { text: bytes.toString("hex").toUpperCase(), how: " (hex-encoded)" },
    { text: Buffer.from(value, "utf16le").toString("latin1"), how: " (UTF-16)" },
    { text: Buffer.from(value, "utf16le").swap16().toString("latin1"), how: " (UTF-16)" },
  ];
  for (const core of base64Cores(bytes)) {
    forms.push({ text: core, how: " (base64-encoded)" });
    forms.push({ text: core.replaceAll("+", "-").replaceAll("/", "_"), how: " (base64url-encoded)" });
  }
  const seen = new Set<string>();
  return forms.filter((f) => !seen.has(f.text) && seen.add(f.text));
}
