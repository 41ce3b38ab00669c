import assert from "node:assert/strict";
import { it } from "node:test";
import { run } from "../../lib/proc.ts";
import { isValidRefName } from "./policy.ts";

it("isValidRefName() agrees with git check-ref-format on names an attacker would try", async () => {
  const names = [
    "refs/heads/main",
    "refs/heads/agent/x",
    "refs/tags/v1.0",
    "refs/heads/agent/../main",
    "refs/heads/agent/./x",
    "refs/heads/.hidden",
    "refs/heads/x.lock",
    "refs/heads/x/",
    "refs/heads/x.",
    "refs/heads//x",
    "refs/heads/a@{1}",
    "refs/heads/a b",
    "refs/heads/a\tb",
    "refs/heads/a~1",
    "refs/heads/a^",
    "refs/heads/a:b",
    "refs/heads/a?",
    "refs/heads/a*",
    "refs/heads/a[b",
    "refs/heads/a\\b",
    "refs/heads/a\x7fb",
    "refs/heads/café",
    "refs/heads/@",
  ];
  for (const name of names) {
    const git = (await run(["git", "check-ref-format", name], { expect: [0, 1] })).code === 0;
    assert.equal(isValidRefName(name), git, `${JSON.stringify(name)}: git says ${git ? "valid" : "invalid"}`);
  }
  for (const name of ["HEAD", "heads/main", "main", "refs"]) assert.equal(isValidRefName(name), false, `${name} is not a full ref under refs/`);
});
