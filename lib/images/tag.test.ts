import assert from "node:assert/strict";
import { test } from "node:test";
import { contentTag } from "./tag.ts";

test("contentTag() is stable for the same inputs and changes with any byte, name or boundary", () => {
  const base = [
    { name: "Dockerfile", content: "FROM x\n" },
    { name: "dist/sidecar/init.js", content: "a" },
  ];
  const tag = contentTag(base);
  assert.match(tag, /^[0-9a-f]{16}$/);
  assert.equal(contentTag(structuredClone(base)), tag);
  assert.notEqual(contentTag([base[0]!, { name: "dist/sidecar/init.js", content: "b" }]), tag);
  assert.notEqual(contentTag([base[0]!, { name: "dist/sidecar/other.js", content: "a" }]), tag);
  // Moving a byte from one part to the next must not collide.
  assert.notEqual(contentTag([{ name: "Dockerfile", content: "FROM x\na" }, { name: "dist/sidecar/init.js", content: "" }]), tag);
  assert.equal(contentTag([{ name: "f", content: new TextEncoder().encode("x") }]), contentTag([{ name: "f", content: "x" }]));
});
