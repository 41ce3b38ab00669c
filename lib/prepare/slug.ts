// Bottle slugs: "<agent>-<4 random base36 chars>", unique under the state root. The
// slug names every resource the bottle creates, so it stays short and DNS-safe.
import { randomBytes } from "node:crypto";
import { BbError } from "../errors.ts";
import { makeBottleDir } from "../paths.ts";

export const SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

function slugBase(agent: string): string {
  const base = agent.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40);
  return base || "bottle";
}

function randomSuffix(): string {
  const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
  return Array.from(randomBytes(4), (b) => alphabet[b % 36]).join("");
}

/** A new slug, its state dir made by this call: two prepares at once never share one. */
export async function mintSlug(agent: string, stateRoot: string): Promise<string> {
  for (let i = 0; i < 20; i++) {
    const slug = `${slugBase(agent)}-${randomSuffix()}`;
    if (await makeBottleDir(stateRoot, slug)) return slug;
  }
  throw new BbError("STATE", `Cannot mint a free slug for ${agent} under ${stateRoot}: 20 tries collided (run bb-cleanup?)`);
}

export function checkSlug(slug: string, flag = "--identity"): string {
  if (!SLUG_PATTERN.test(slug)) {
    throw new BbError("USAGE", `${flag} "${slug}" is not a valid slug: lower-case letters, digits and dashes, at most 63, starting with a letter or digit`);
  }
  return slug;
}
