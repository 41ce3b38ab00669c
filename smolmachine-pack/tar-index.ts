// Where each file of a tar archive sits, so a `docker save` tarball can be served without
// unpacking it: one pass over the headers, then byte ranges straight from the file.
// Understands ustar names (with prefix), PAX `path`/`size` records and GNU long names,
// which is what Go's archive/tar (docker save) writes.
import { Buffer } from "node:buffer";
import { open } from "node:fs/promises";
import { BbError } from "../lib/errors.ts";

export interface TarEntry {
  name: string;
  /** Byte offset of the entry's data in the archive. */
  offset: number;
  size: number;
}

const BLOCK = 512;

function field(buf: Buffer, start: number, len: number): string {
  const raw = buf.subarray(start, start + len);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul === -1 ? len : nul).toString("utf8");
}

function numeric(buf: Buffer, start: number, len: number): number {
  // Base-256 (high bit set) for sizes too large for 11 octal digits.
  if (buf[start]! & 0x80) {
    let n = buf[start]! & 0x7f;
    for (let i = 1; i < len; i++) n = n * 256 + buf[start + i]!;
    return n;
  }
  const text = field(buf, start, len).trim();
  return text ? parseInt(text, 8) : 0;
}

function paxRecords(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const space = data.indexOf(0x20, i);
    if (space === -1) break;
    const len = parseInt(data.subarray(i, space).toString("utf8"), 10);
    if (!len) break;
    const rec = data.subarray(space + 1, i + len - 1).toString("utf8");
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** Index the regular files of a tar archive by name ("./" prefixes dropped). */
export async function indexTar(path: string): Promise<Map<string, TarEntry>> {
  const fh = await open(path, "r");
  const entries = new Map<string, TarEntry>();
  try {
    const { size: total } = await fh.stat();
    const header = Buffer.alloc(BLOCK);
    let pos = 0;
    let pax: Record<string, string> = {};
    let longName: string | null = null;
    while (pos + BLOCK <= total) {
      await fh.read(header, 0, BLOCK, pos);
      if (header.every((b) => b === 0)) break;
      const type = String.fromCharCode(header[156] || 0x30);
      const prefix = field(header, 345, 155);
      const ustarName = field(header, 0, 100);
      let size = numeric(header, 124, 12);
      const dataAt = pos + BLOCK;
      if (type === "x" || type === "L") {
        const data = Buffer.alloc(size);
        await fh.read(data, 0, size, dataAt);
        if (type === "x") pax = paxRecords(data);
        else longName = data.toString("utf8").replace(/\0+$/, "");
      } else if (type === "g") {
        // global PAX header: nothing we need
      } else {
        const name = (pax.path ?? longName ?? (prefix ? `${prefix}/${ustarName}` : ustarName)).replace(/^\.\//, "");
        if (pax.size) size = Number(pax.size);
        if (type === "0" || type === "7") entries.set(name, { name, offset: dataAt, size });
        pax = {};
        longName = null;
      }
      pos = dataAt + Math.ceil(size / BLOCK) * BLOCK;
    }
  } catch (e) {
    throw new BbError("PACK", `Cannot read tar archive ${path}: ${(e as Error).message}`, { cause: e });
  } finally {
    await fh.close();
  }
  return entries;
}
