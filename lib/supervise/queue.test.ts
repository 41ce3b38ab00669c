import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { listRequests, normalizeHost, QUEUE_VERSION, readRequest, writeRequest, type QueueRequest } from "./queue.ts";
import { makeTestBottle } from "./testdata/bottle.ts";

function hostRequest(id: string, createdAt: string): QueueRequest {
  return {
    version: QUEUE_VERSION,
    id,
    kind: "host",
    host: "example.org",
    tlsPassthrough: false,
    reason: "docs",
    question: null,
    status: "pending",
    answer: null,
    createdAt,
    decidedAt: null,
  };
}

test("writeRequest() leaves exactly one well-formed file per id and no temp files behind", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, hostRequest("aa11", "2026-01-01T00:00:00.000Z"));
    await writeRequest(b.queueDir, { ...hostRequest("aa11", "2026-01-01T00:00:00.000Z"), status: "denied", answer: "no" });
    assert.deepEqual(await readdir(b.queueDir), ["aa11.json"]);
    const onDisk = JSON.parse(await readFile(join(b.queueDir, "aa11.json"), "utf8"));
    assert.equal(onDisk.status, "denied");
    assert.equal((await readRequest(b.queueDir, "aa11"))?.answer, "no");
    assert.equal(await readRequest(b.queueDir, "bb22"), null);
  } finally {
    await b.remove();
  }
});

test("writeRequest() refuses a host request without a host and an id that is not path-safe", async () => {
  const b = await makeTestBottle();
  try {
    await assert.rejects(writeRequest(b.queueDir, { ...hostRequest("aa11", "x"), host: null }));
    await assert.rejects(writeRequest(b.queueDir, hostRequest("../evil", "x")));
    assert.deepEqual(await readdir(b.queueDir), []);
  } finally {
    await b.remove();
  }
});

test("listRequests() returns requests oldest first and skips a malformed file instead of failing", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, hostRequest("bb22", "2026-01-02T00:00:00.000Z"));
    await writeRequest(b.queueDir, hostRequest("aa11", "2026-01-03T00:00:00.000Z"));
    await writeRequest(b.queueDir, hostRequest("cc33", "2026-01-01T00:00:00.000Z"));
    await writeFile(join(b.queueDir, "dd44.json"), "{ not json");
    await writeFile(join(b.queueDir, ".ee55.json.tmp-1-abc"), "{}");
    assert.deepEqual((await listRequests(b.queueDir)).map((r) => r.id), ["cc33", "bb22", "aa11"]);
  } finally {
    await b.remove();
  }
});

test("normalizeHost() keeps exact and *.suffix hosts and rejects URLs, ports, paths and a bare *", () => {
  assert.equal(normalizeHost(" API.Example.COM. "), "api.example.com");
  assert.equal(normalizeHost("*.example.com"), "*.example.com");
  assert.equal(normalizeHost("localhost"), "localhost");
  for (const bad of ["https://example.com", "example.com:443", "example.com/x", "*", "*.", "a..b", "-a.com", "ex ample.com", ""]) {
    assert.equal(normalizeHost(bad), null, bad);
  }
});

test("normalizeHost() refuses a wildcard over a whole top-level domain and numbers a resolver would read as another address", () => {
  // getaddrinfo reads each of these as 127.0.0.1: the operator would approve a name that
  // does not say where it goes.
  for (const bad of ["*.com", "*.co.uk", "*.github.io", "*.localhost", "0x7f.1", "0x7f000001", "2130706433", "127.1", "0177.0.0.1", "127.0.0.01", "1.2.3.256", "*.1.2.3.4", "example.0x10"]) {
    assert.equal(normalizeHost(bad), null, bad);
  }
  assert.equal(normalizeHost("*.example.com"), "*.example.com");
  assert.equal(normalizeHost("10.0.0.1"), "10.0.0.1", "a plain dotted quad says what it is");
  assert.equal(normalizeHost("1password.com"), "1password.com");
  assert.equal(normalizeHost("x.123abc"), "x.123abc");
});

test("a queue file whose host is not a host name does not parse: the operator never sees or approves it", async () => {
  const b = await makeTestBottle();
  try {
    for (const [id, host] of [["aa11", "*"], ["bb22", "evil.example.com\u001b[2K\rdocs.example.org"], ["cc33", "*.com"], ["dd44", "*.github.io"]] as const) {
      await writeFile(join(b.queueDir, `${id}.json`), JSON.stringify({ ...hostRequest(id, "2026-01-01T00:00:00.000Z"), host }));
      await assert.rejects(readRequest(b.queueDir, id), /host: not a host name/);
    }
    assert.deepEqual(await listRequests(b.queueDir), []);
    await assert.rejects(writeRequest(b.queueDir, { ...hostRequest("dd44", "x"), host: "*" }));
  } finally {
    await b.remove();
  }
});
