// An image tag that names its content: a hash over the build inputs, so a change in any of
// them rebuilds and an unchanged tree reuses the image already there.
import { createHash } from "node:crypto";

interface TagInput {
  /** A path-like label for the part ("Dockerfile", "dist/sidecar/init.js"). */
  name: string;
  content: string | Uint8Array;
}

/** 16 hex digits of SHA-256 over the parts, in the order given, each framed by name and length. */
export function contentTag(parts: TagInput[]): string {
  const h = createHash("sha256");
  for (const p of parts) {
    const bytes = typeof p.content === "string" ? new TextEncoder().encode(p.content) : p.content;
    h.update(`${p.name}\0${bytes.byteLength}\0`);
    h.update(bytes);
  }
  return h.digest("hex").slice(0, 16);
}
