import assert from "node:assert/strict";
import { test } from "node:test";
import { pickStale, totalSize, type OurImage } from "./stale.ts";

const img = (id: string, ref: string | null): OurImage => ({ id: `sha256:${id}`, ref, size: "1MB", created: "1 day ago" });

test("pickStale keeps the checkout's current images and every image a container uses; the rest go", () => {
  const current = img("a", "bot-bottle/sidecar:current");
  const old = img("b", "bot-bottle/sidecar:old");
  const usedOld = img("c", "bot-bottle/agent:old");
  const untagged = img("d", null);
  const usedUntagged = img("e", null);
  const stale = pickStale([current, old, usedOld, untagged, usedUntagged], new Set(["bot-bottle/sidecar:current", "bot-bottle/agent:now"]), new Set(["sha256:c", "sha256:e"]));
  assert.deepEqual(stale, [old, untagged]);
});

test("pickStale keeps an old tag that points at the current image (removing it would only untag)", () => {
  const current = img("a", "bot-bottle/agent:current");
  const alias = img("a", "bot-bottle/agent:alias");
  assert.deepEqual(pickStale([current, alias], new Set(["bot-bottle/agent:current"]), new Set()), []);
});

test("totalSize adds docker's decimal human sizes", () => {
  const sized = (size: string): OurImage => ({ ...img("x", null), size });
  assert.equal(totalSize([sized("276MB"), sized("1.07GB"), sized("500kB")]), "1.3GB");
  assert.equal(totalSize([sized("276MB"), sized("4MB")]), "280MB");
});
