import assert from "node:assert/strict";
import { test } from "node:test";
import { listTable, planText, type ListRow } from "./format.ts";

const row = (over: Partial<ListRow>): ListRow => ({
  backend: "docker", slug: "dup", agent: "shell", services: ["firewall"], startedAt: "2026-11-24T10:00:00.123Z", status: "running", live: true, why: "",
  stateDir: null, otherStateRoot: null, owner: null, containers: [], networks: [], volumes: [], machines: [], loopbackAddr: null, ...over,
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

test("listTable() and planText() show what labels, state dirs and plans say with control characters escaped: no cell can clear a line, start one, or retitle the terminal", () => {
  // A container's labels come from its image (anyone's), an owner record's time from a file.
  const forged = "\u001b[2K\r\u001b[1A\u001b[2Kresearcher-k3x9";
  const text = listTable([row({ agent: `a\u001b]0;pwned\u0007`, startedAt: "\u001b[31mnow", otherStateRoot: "/srv\nshell-x1y2  docker" })]);
  assert.deepEqual(text.split("\n"), [
    "BACKEND  SLUG  AGENT              SERVICES  STARTED      STATUS",
    "docker   dup   a\\x1b]0;pwned\\x07  firewall  \\x1b[31mnow  running (state root /srv\\x0ashell-x1y2  docker)",
    "",
  ]);
  const plan = planText([
    { slug: "dup", backend: "docker", agent: forged, live: false, why: "no owner\u202e", machines: [], containers: [{ name: "bb-dup-agent", id: "c1", role: `agent${forged}`, running: false }], networks: [], volumes: [], stateDir: "/state\n  state dir /home/you" },
  ]);
  assert.deepEqual(plan.split("\n"), [
    "dup (docker, \\x1b[2K\\x0d\\x1b[1A\\x1b[2Kresearcher-k3x9): no owner\\u202e",
    "  container  bb-dup-agent                     agent\\x1b[2K\\x0d\\x1b[1A\\x1b[2Kresearcher-k3x9",
    "  state dir  /state\\x0a  state dir /home/you",
    "",
  ]);
});
