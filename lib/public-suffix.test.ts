import assert from "node:assert/strict";
import { test } from "node:test";
import { publicSuffixUnderWildcard, registrableDomain } from "./public-suffix.ts";

test("a wildcard over a public suffix names the suffix, from both sections of the list", () => {
  // ICANN section, private section (anyone's GitHub Pages site, anyone's S3 bucket), and a
  // suffix that only a list wildcard rule (*.ck) makes public.
  for (const s of ["co.uk", "com", "github.io", "s3.amazonaws.com", "blogspot.com", "foo.ck"]) {
    assert.deepEqual(publicSuffixUnderWildcard(`*.${s}`), { suffix: s, text: s });
  }
});

test("a wildcard over a parent of public suffixes (*.amazonaws.com, *.on.aws, *.windows.net) is as open, and names suffixes beneath it", () => {
  const cases = {
    "*.amazonaws.com": "s3.amazonaws.com", // every bucket, API Gateway, load balancer
    "*.sa-east-1.amazonaws.com": "s3.sa-east-1.amazonaws.com",
    "*.on.aws": null, // Lambda function URLs (lambda-url.<region>.on.aws), two levels down
    "*.core.windows.net": null, // blob.core.windows.net: every storage account
    "*.windows.net": "servicebus.windows.net", // core.windows.net itself is no rule, its children are
  } as const;
  for (const [host, nearest] of Object.entries(cases)) {
    const open = publicSuffixUnderWildcard(host);
    assert.ok(open, `${host} is not flagged`);
    const base = host.slice(2);
    assert.ok(open.suffix.endsWith(`.${base}`), `${host}: ${open.suffix}`);
    if (nearest) assert.equal(open.suffix, nearest, host);
    assert.match(open.text, new RegExp(`^the public suffixes beneath ${base.replaceAll(".", "\\.")} \\(${open.suffix.replaceAll(".", "\\.")}[,)]`), host);
  }
  assert.match(publicSuffixUnderWildcard("*.core.windows.net")!.text, /blob\.core\.windows\.net/);
  assert.match(publicSuffixUnderWildcard("*.on.aws")!.suffix, /^[a-z-]+\.[a-z0-9-]+\.on\.aws$/);
});

test("storage.googleapis.com, every Cloud Storage bucket but not in the list, counts as a public suffix", () => {
  assert.deepEqual(publicSuffixUnderWildcard("*.storage.googleapis.com"), { suffix: "storage.googleapis.com", text: "storage.googleapis.com" });
  assert.equal(publicSuffixUnderWildcard("*.mybucket.storage.googleapis.com"), null);
});

test("one organisation's subdomains, exact hosts and names outside the list are not flagged", () => {
  // *.www.ck: the list's exception (!www.ck) makes www.ck one registrant's name.
  for (const h of ["*.example.co.uk", "*.myorg.github.io", "*.example.com", "*.api.example.test", "*.docs.python.org", "*.www.ck", "*.mybucket.s3.amazonaws.com", "co.uk", "github.io", "example.com", "amazonaws.com", "docs.amazonaws.com"]) {
    assert.equal(publicSuffixUnderWildcard(h), null, h);
  }
});

test("a host's registrable domain is its public suffix and one label more, from both sections and the unlisted bases", () => {
  const cases: [string, string][] = [
    ["a.b.foo.github.io", "foo.github.io"],
    ["bar.github.io", "bar.github.io"],
    ["www.shop.co.uk", "shop.co.uk"],
    ["h1.x.test", "x.test"],
    ["-odd_.x.test", "x.test"], // a name DNS would refuse still has one
    ["a.x.test.", "x.test"],
    ["obj.mybucket.storage.googleapis.com", "mybucket.storage.googleapis.com"],
    ["api.example.com", "example.com"],
    // No registrable domain: the name is its own.
    ["github.io", "github.io"],
    ["co.uk", "co.uk"],
    ["localhost", "localhost"],
    ["storage.googleapis.com", "storage.googleapis.com"],
  ];
  for (const [host, domain] of cases) assert.equal(registrableDomain(host), domain, host);
});
