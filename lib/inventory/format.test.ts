import assert from "node:assert/strict";
import { test } from "node:test";
import { listTable, type ListRow } from "./format.ts";

const row = (over: Partial<ListRow>): ListRow => ({
  backend: "docker", slug: "dup", agent: "shell", services: ["firewall"], startedAt: "2026-11-24T10:00:00.123Z", status: "running", live: true, why: "",
  stateDir: null, otherStateRoot: null, owner: null, containers: [], networks: [], machines: [], loopbackAddr: null, ...over,
});

test("listTable() names the other state root on that root's row, so a slug of both roots reads as two bottles", () => {
  const text = listTable([row({ status: "starting", stateDir: "/here/bottles/dup" }), row({ otherStateRoot: "/srv/other" })], { all: true });
  assert.deepEqual(text.split("\n").map((l) => l.trimEnd()), [
    "BACKEND  SLUG  AGENT  SERVICES  STARTED               STATUS                           RESOURCES",
    "docker   dup   shell  firewall  2026-11-24T10:00:00Z  starting                         state dir",
    "docker   dup   shell  firewall  2026-11-24T10:00:00Z  running (state root /srv/other)  -",
    "",
  ]);
});
