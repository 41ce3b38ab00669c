// The blocks the scanner lets look random (detectors.ts BENIGN_SOURCES): PEM armour of
// certificates, public keys and signatures, and data: URIs. Their base64 is decoded and
// scanned like any other content, so wrapping a key in one hides nothing; and the base64
// itself is spared the entropy check only when what it carries has the shape its wrapper
// claims (DER that tiles the payload exactly, OpenPGP packets, an SSH signature, an image
// or font's magic bytes) or is plain text, which the decoded scan has read in full.
// Random bytes in "-----BEGIN CERTIFICATE-----" armour, or behind "data:a/b;base64,",
// are then tokens like any others.
import { Buffer } from "node:buffer";
import { lines, printableByte } from "./wrapped-base64.ts";

interface Block {
  /** The bytes the block carries (its base64 decoded). */
  payload: Buffer;
  /** Whether the payload has the shape the block claims, so its base64 may look random. */
  genuine: boolean;
  /** Where its armour header lines ("Comment: ...") lie in the text read, which the payload
   * leaves out: they are no part of what is spared, and anything may be written in them. */
  headers: { start: number; end: number }[];
}

const PEM = /^-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END [A-Z0-9 ]+-----$/;
const DATA_URI = /^data:([a-z]{1,20}\/[A-Za-z0-9.+-]{1,80});base64,([A-Za-z0-9+/=]+)$/;

export function readBlock(text: string): Block {
  const uri = DATA_URI.exec(text);
  if (uri) {
    const payload = Buffer.from(uri[2]!, "base64");
    return { payload, genuine: payload.length > 0 && (isText(payload) || hasMagic(payload)), headers: [] };
  }
  const pem = PEM.exec(text);
  if (!pem) return { payload: Buffer.alloc(0), genuine: false, headers: [] };
  // Armour headers ("Version: ...", "Comment: ...") and the OpenPGP checksum line ("=AbCd")
  // are not part of the payload. The lines may be broken by "\n" escapes (the block in a
  // JSON string), whose "n" would otherwise be read as a base64 digit.
  const kind = pem[1]!;
  const at = "-----BEGIN ".length + kind.length + "-----".length;
  const headers: Block["headers"] = [];
  let base64 = "";
  for (const { start, end } of lines(pem[2]!)) {
    const line = pem[2]!.slice(start, end);
    if (line.includes(":")) headers.push({ start: at + start, end: at + end });
    else if (!/^=[A-Za-z0-9+/]{4}$/.test(line.trim())) base64 += line;
  }
  const payload = Buffer.from(base64, "base64");
  const genuine =
    payload.length > 0 &&
    (isText(payload) ||
      (kind.startsWith("PGP ") ? tilesOpenPgp(payload)
      : kind === "SSH SIGNATURE" ? payload.subarray(0, 6).toString("latin1") === "SSHSIG"
      : tilesDer(payload)));
  return { payload, genuine, headers };
}

function isText(b: Buffer): boolean {
  for (const c of b) if (!printableByte(c)) return false;
  return true;
}

/** Image and font formats a page or a tool inlines as data: URIs. */
function hasMagic(b: Buffer): boolean {
  const at = (offset: number, s: string) => b.subarray(offset, offset + s.length).toString("latin1") === s;
  return (
    at(0, "\x89PNG\r\n\x1a\n") ||
    at(0, "GIF87a") ||
    at(0, "GIF89a") ||
    at(0, "\xff\xd8\xff") ||
    (at(0, "RIFF") && at(8, "WEBP")) ||
    at(4, "ftyp") || // AVIF, HEIC
    at(0, "\x00\x00\x01\x00") || // ICO
    at(0, "BM") ||
    at(0, "wOFF") ||
    at(0, "wOF2") ||
    at(0, "\x00\x01\x00\x00") || // TrueType
    at(0, "OTTO")
  );
}

/** DER: one or more TLVs that end exactly where the payload does (a certificate is one,
 * OpenSSL's TRUSTED CERTIFICATE two). */
function tilesDer(b: Buffer): boolean {
  let at = 0;
  while (at < b.length) {
    if (b.length - at < 2 || (b[at]! & 0x1f) === 0x1f) return false; // high tag numbers never start these blocks
    const first = b[at + 1]!;
    let len: number;
    let head = 2;
    if (first < 0x80) len = first;
    else {
      const n = first & 0x7f;
      if (n === 0 || n > 4 || b.length - at < 2 + n) return false;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + b[at + 2 + i]!;
      head += n;
    }
    at += head + len;
  }
  return at === b.length;
}

/** OpenPGP (RFC 4880 4.2): packets, old or new format, that end exactly where the payload does. */
function tilesOpenPgp(b: Buffer): boolean {
  let at = 0;
  while (at < b.length) {
    const tag = b[at]!;
    if (!(tag & 0x80)) return false;
    let len: number;
    let head: number;
    if (tag & 0x40) {
      const o = b[at + 1] ?? 224;
      if (o < 192) [len, head] = [o, 2];
      else if (o < 224) [len, head] = [((o - 192) << 8) + (b[at + 2] ?? 0) + 192, 3];
      else if (o === 255 && b.length - at >= 6) [len, head] = [b.readUInt32BE(at + 2), 6];
      else return false; // partial lengths (not in keys or signatures), or cut short
    } else {
      const type = tag & 3;
      if (type === 3) return false;
      head = 1 + (1 << type);
      len = 0;
      for (let i = 1; i < head; i++) len = len * 256 + (b[at + i] ?? 0);
    }
    if (b.length - at < head) return false;
    at += head + len;
  }
  return at === b.length;
}
