import assert from "node:assert/strict";
import { test } from "node:test";
import { publicSuffixUnderWildcard } from "./public-suffix.ts";

test("a wildcard over a public suffix names the suffix, from both sections of the list", () => {
  // ICANN section, private section (anyone's GitHub Pages site, anyone's S3 bucket), and a
  // suffix that only a list wildcard rule (*.ck) makes public.
  for (const s of ["co.uk", "com", "github.io", "s3.amazonaws.com", "blogspot.com", "foo.ck"]) {
    assert.equal(publicSuffixUnderWildcard(`*.${s}`), s);
  }
});

test("one organisation's subdomains, exact hosts and names outside the list are not flagged", () => {
  for (const h of ["*.example.co.uk", "*.myorg.github.io", "*.example.com", "*.amazonaws.com", "*.api.example.test", "co.uk", "github.io", "example.com"]) {
    assert.equal(publicSuffixUnderWildcard(h), null, h);
  }
});
