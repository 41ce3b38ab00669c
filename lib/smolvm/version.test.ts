import assert from "node:assert/strict";
import { test } from "node:test";
import { isBbError } from "../errors.ts";
import { capabilities, compareVersions, parseVersion } from "./version.ts";

test("parseVersion() reads the usual --version spellings", () => {
  assert.equal(parseVersion("smolvm 0.8.1\n").text, "0.8.1");
  assert.equal(parseVersion("smolvm v1.8.0 (3f2a9c1 2026-05-01)").text, "1.8.0");
  assert.deepEqual(parseVersion("1.0.2"), { major: 1, minor: 0, patch: 2, text: "1.0.2" });
  assert.throws(() => parseVersion("smolvm dev"), (e) => isBbError(e) && e.code === "SMOLVM");
});

test("compareVersions() orders numerically, not as text", () => {
  assert.equal(compareVersions(parseVersion("0.10.0"), "0.9.9"), 1);
  assert.equal(compareVersions(parseVersion("1.0.2"), "1.0.2"), 0);
  assert.equal(compareVersions(parseVersion("1.7.9"), "1.8.0"), -1);
});

test("capabilities() draws the lines at 0.8.1, 1.0.2 and 1.8.0", () => {
  const c = (v: string) => capabilities(parseVersion(v));
  assert.deepEqual(c("0.8.0"), { nameStyle: "mixed", allowlistNeedsDbPatch: true, execForwardsWinsize: false });
  assert.deepEqual(c("0.8.1"), { nameStyle: "mixed", allowlistNeedsDbPatch: true, execForwardsWinsize: true });
  assert.deepEqual(c("1.0.1"), { nameStyle: "mixed", allowlistNeedsDbPatch: true, execForwardsWinsize: true });
  assert.deepEqual(c("1.0.2"), { nameStyle: "flag", allowlistNeedsDbPatch: true, execForwardsWinsize: true });
  assert.deepEqual(c("1.7.9"), { nameStyle: "flag", allowlistNeedsDbPatch: true, execForwardsWinsize: true });
  assert.deepEqual(c("1.8.0"), { nameStyle: "flag", allowlistNeedsDbPatch: false, execForwardsWinsize: true });
});

test("capabilities() refuses releases older than 0.8.0 and says which one is needed", () => {
  assert.throws(() => capabilities(parseVersion("0.7.9")), /needs smolvm 0\.8\.0 or later/);
});
