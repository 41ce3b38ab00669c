import assert from "node:assert/strict";
import type dns from "node:dns";
import { test } from "node:test";
import { routableLookup, unroutable, type LookupAll } from "./lookup.ts";

test("unroutable(): loopback, unspecified, link-local (the metadata service) and multicast, in IPv4, IPv6 and IPv4-mapped spellings; private and public addresses pass", () => {
  for (const a of ["127.0.0.1", "127.5.6.7", "0.0.0.0", "169.254.169.254", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "FE80::abcd", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254"]) {
    assert.notEqual(unroutable(a), null, a);
  }
  for (const a of ["10.0.0.5", "172.17.0.1", "192.168.1.1", "203.0.113.5", "2001:db8::1", "fd00::1", "::ffff:203.0.113.5"]) assert.equal(unroutable(a), null, a);
});

/** A resolver that answers every name with `addresses` (no query leaves this process). */
const answering = (addresses: dns.LookupAddress[]): LookupAll => (_name, _opts, cb) => cb(null, addresses);

test("routableLookup(): drops the addresses egress never dials, fails naming them when none is left, and answers in the form asked for", async () => {
  const ask = (lookup: ReturnType<typeof routableLookup>, all: boolean) =>
    new Promise<{ err: NodeJS.ErrnoException | null; result: unknown }>((r) =>
      (lookup as unknown as (h: string, o: dns.LookupOptions, cb: (e: NodeJS.ErrnoException | null, a?: unknown, f?: number) => void) => void)("api.example.test", { all }, (err, a, f) => r({ err, result: all ? a : [a, f] })),
    );
  const mixed = routableLookup("egress", answering([{ address: "169.254.169.254", family: 4 }, { address: "203.0.113.5", family: 4 }]));
  assert.deepEqual((await ask(mixed, false)).result, ["203.0.113.5", 4]);
  assert.deepEqual((await ask(mixed, true)).result, [{ address: "203.0.113.5", family: 4 }]);
  const metadata = await ask(routableLookup("egress", answering([{ address: "169.254.169.254", family: 4 }])), false);
  assert.equal(metadata.err?.code, "EUNROUTABLE");
  assert.match(metadata.err!.message, /^api\.example\.test resolves only to 169\.254\.169\.254 \(link-local \(a cloud metadata service lives there\)\), which egress never dials$/);
});
