import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { foldPath, globToRegExp, pathMatches, refMatches } from "./glob.ts";

describe("push policy globs", () => {
  it("refMatches(): short patterns name branches, refs/ patterns match the full ref", () => {
    assert.equal(refMatches("main", "refs/heads/main"), true);
    assert.equal(refMatches("main", "refs/heads/mainline"), false);
    assert.equal(refMatches("agent/*", "refs/heads/agent/a"), true);
    assert.equal(refMatches("agent/*", "refs/heads/agent/a/b"), false);
    assert.equal(refMatches("agent/**", "refs/heads/agent/a/b"), true);
    assert.equal(refMatches("refs/tags/v*", "refs/tags/v1.0"), true);
    assert.equal(refMatches("refs/tags/v*", "refs/heads/v1"), false);
  });

  it("pathMatches(): a slash-less pattern matches a name at any depth", () => {
    assert.equal(pathMatches("*.pem", "deep/dir/key.pem"), true);
    assert.equal(pathMatches("secrets", "app/secrets/db.txt"), true);
    assert.equal(pathMatches("secrets", "app/secretsx/db.txt"), false);
  });

  it("pathMatches(): a pattern with a slash is anchored at the root and protects what is below", () => {
    assert.equal(pathMatches(".github/**", ".github/workflows/ci.yml"), true);
    assert.equal(pathMatches("docs/*", "docs/a/b.md"), true);
    assert.equal(pathMatches("docs/*", "src/docs/a.md"), false);
    assert.equal(pathMatches("/infra/", "infra/main.tf"), true);
  });

  it("pathMatches(): a pattern written with ./ or doubled slashes protects what it names, not nothing", () => {
    assert.equal(pathMatches("./deploy/**", "deploy/prod.tf"), true);
    assert.equal(pathMatches("./.github/workflows/*", ".github/workflows/ci.yml"), true);
    assert.equal(pathMatches(".github/./workflows/*", ".github/workflows/ci.yml"), true);
    assert.equal(pathMatches("deploy//**", "deploy/prod.tf"), true);
    assert.equal(pathMatches("./secrets", "app/secrets/db.txt"), true);
    assert.equal(pathMatches("./deploy/**", "src/deploy/x"), false, "still anchored at the root");
  });

  it("pathMatches(): folds case, Unicode form, invisible characters and trailing dots or spaces on both sides", () => {
    assert.equal(foldPath(".GitHub. /Workflows/CI.yml"), ".github/workflows/ci.yml");
    assert.equal(pathMatches(".github/**", ".GITHUB/workflows/ci.yml"), true);
    assert.equal(pathMatches("secrets", "app/Secrets./db.txt"), true);
    assert.equal(pathMatches("secrets", "app/se\u200bcrets/db.txt"), true);
    assert.equal(pathMatches("caf\u00e9", "cafe\u0301/menu.txt"), true, "NFC pattern, NFD path");
    assert.equal(pathMatches("**/*.pem", "keys/ID.PEM"), true);
    assert.equal(pathMatches(".github/**", ".githubx/ci.yml"), false);
    // NTFS upcases the dotless i and the long s to I and S; APFS folds the long s to s.
    assert.equal(pathMatches(".github/**", ".g\u0131thub/workflows/x.yml"), true);
    assert.equal(pathMatches("secrets", "\u017fecrets/token.txt"), true);
  });

  it("pathMatches(): an NTFS 8.3 short name stands for the name it may abbreviate", () => {
    assert.equal(pathMatches(".github/**", "GITHUB~1/workflows/ci.yml"), true);
    assert.equal(pathMatches(".github/workflows/*", "GITHUB~1/WORKFL~1/ci.yml"), true);
    assert.equal(pathMatches(".github/**", "GI7A2B~1/workflows/ci.yml"), true, "the hashed form: two characters and four hex digits");
    assert.equal(pathMatches("secrets", "app/SECRET~1/db.txt"), true);
    assert.equal(pathMatches("config.env", "CONFIG~1.ENV"), true);
    assert.equal(pathMatches("**/*.yaml", "deploy/CI~1.YAM"), true, "the extension cut to three");
    assert.equal(pathMatches("deploy/**", "src/DEPLOY~1"), false, "anchored patterns stay anchored");
    assert.equal(pathMatches(".github/**", "DOCS~1/ci.yml"), false);
    assert.equal(pathMatches("config.env", "CONFIG~1.TXT"), false);
    assert.equal(pathMatches("secrets", "SECRET~1.TXT"), false, "a name without an extension gets a short name without one");
  });

  it("pathMatches(): a folder pattern also covers a file, symlink or submodule with the folder's name", () => {
    assert.equal(pathMatches(".github/**", ".github"), true);
    assert.equal(pathMatches("deploy/**", "deploy"), true);
    assert.equal(pathMatches("deploy/**", "src/deploy"), false);
  });

  it("refMatches(ignoreCase) finds the spellings a case-insensitive upstream would merge", () => {
    assert.equal(refMatches("main", "refs/heads/MAIN"), false);
    assert.equal(refMatches("main", "refs/heads/MAIN", true), true);
    assert.equal(refMatches("release/*", "refs/heads/Release/1", true), true);
  });

  it("globToRegExp() escapes regex characters", () => {
    assert.equal(globToRegExp("a.b").test("axb"), false);
    assert.equal(globToRegExp("**/*.pem").test("key.pem"), true);
  });
});
