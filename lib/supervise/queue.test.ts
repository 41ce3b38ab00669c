import assert from "node:assert/strict";
import { chmod, chown, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { run, which } from "../proc.ts";
import { listRequests, normalizeHost, QUEUE_VERSION, readRequest, shareQueueDir, writeRequest, type QueueRequest } from "./queue.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { makeTestBottle } from "./testdata/bottle.ts";
import { watch } from "./testdata/process.ts";
import { tsArgv } from "./testdata/ts-argv.ts";

/** A compromised bundle daemon's moves on the queue, as a real process (testdata/hostile-bundle.ts). */
const hostileBundle = (args: string[]) => watch(tsArgv("lib/supervise/testdata/hostile-bundle.ts", args));

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

test("writeRequest() into a queue where a bundle daemon swaps each temp file for a symlink chmods and writes nothing outside the queue", async () => {
  const b = await makeTestBottle();
  // Stands in for the operator's SSH key, which git-gate's mount puts in the bundle.
  const victim = join(b.stateRoot, "id_ed25519");
  const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real one\n-----END OPENSSH PRIVATE KEY-----\n";
  await writeFile(victim, key, { mode: 0o600 });
  const bundle = hostileBundle(["swap-temps", b.queueDir, victim]);
  try {
    await bundle.waitFor(/^ready$/, 20_000);
    const swapped = () => bundle.lines.filter((l) => l.startsWith("swapped ")).length;
    const victimMode = async () => ((await stat(victim)).mode & 0o777).toString(8);
    // Until the daemon has won the race many times (or the victim shows it won).
    for (let i = 0; i < 5000 && swapped() < 200 && (await victimMode()) === "600"; i++) {
      await writeRequest(b.queueDir, { ...hostRequest(`aa${i % 50}`, "2026-01-01T00:00:00.000Z"), status: "denied", answer: "no" });
    }
    assert.ok(swapped() > 0, "the daemon swapped no temp file: the race never ran");
    assert.equal(await victimMode(), "600", "the key outside the queue was chmod-ed");
    assert.equal(await readFile(victim, "utf8"), key);
  } finally {
    await bundle.stop();
    await b.remove();
  }
});

test("readRequest() never takes in more than 256 KiB of a request file that a bundle daemon fills after it was opened", async () => {
  const b = await makeTestBottle();
  const path = join(b.queueDir, "aa11.json");
  // A request the queue schema accepts, four times the cap.
  const big = join(b.stateRoot, "big.json");
  await writeFile(big, JSON.stringify({ ...hostRequest("aa11", "2026-01-01T00:00:00.000Z"), reason: "r".repeat(1024 * 1024) }));
  await writeFile(path, "");
  const bundle = hostileBundle(["flap", path, big]);
  try {
    await bundle.waitFor(/^ready$/, 20_000);
    const outcomes = new Set<string>();
    for (let i = 0; i < 600; i++) {
      outcomes.add(
        await readRequest(b.queueDir, "aa11").then(
          (r) => `read a request of ${JSON.stringify(r).length} bytes`,
          (e: Error) => (/over 262144 bytes/.test(e.message) ? "refused: over the cap" : "refused: not a whole request"),
        ),
      );
    }
    assert.deepEqual([...outcomes].sort(), ["refused: not a whole request", "refused: over the cap"]);
  } finally {
    await bundle.stop();
    await b.remove();
  }
});

const cannotActAsDaemons =
  (process.getuid?.() !== 0 && "needs root, to act as the daemons' uids") || (!(await which("setpriv")) && "needs setpriv (util-linux), to act as the daemons' uids");

test("the queue folder a bundle shares is sticky: supervise's uid files requests, the host decides them, and no other uid moves or removes what it did not write", skipWhen(cannotActAsDaemons, "sticky queue folder"), async () => {
  const b = await makeTestBottle();
  const host = { uid: 64000, gid: process.getgid!() };
  const as = (uid: number, script: string) =>
    run(["setpriv", `--reuid=${uid}`, `--regid=${host.gid}`, "--clear-groups", "--", "sh", "-c", script, "sh", b.queueDir], { expect: [0, 1] });
  try {
    // The host user owns its state dir; the daemons share its group (lib/layout.ts daemonIdMap).
    await chmod(b.stateRoot, 0o750);
    await chown(b.queueDir, host.uid, host.gid);
    await shareQueueDir(b.queueDir);
    assert.equal((await stat(b.queueDir)).mode & 0o7777, 0o1770);

    const supervise = 64103;
    const firewall = 64101;
    // As writeRequest does: a temp file of one's own, renamed over the request's name.
    const replace = (uid: number, id: string, json: string) =>
      as(uid, `umask 027; echo '${json}' > "$1/.${id}.tmp" && mv "$1/.${id}.tmp" "$1/${id}.json"`);
    const filed = hostRequest("bb22", "2026-01-01T00:00:00.000Z");
    for (const id of ["bb22", "cc33"]) {
      const r = await replace(supervise, id, JSON.stringify({ ...filed, id }));
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal((await replace(host.uid, "bb22", JSON.stringify({ ...filed, status: "denied" }))).code, 0, "the host decides");

    // Neither daemon may replace or remove the host's decision, nor firewall what supervise filed.
    for (const [uid, id] of [[supervise, "bb22"], [firewall, "bb22"], [firewall, "cc33"]] as const) {
      const moved = await as(uid, `ln -s /etc/passwd "$1/link-${uid}" && mv -f "$1/link-${uid}" "$1/${id}.json"`);
      assert.equal(moved.code, 1, `uid ${uid} replaced ${id}.json`);
      assert.equal((await as(uid, `rm -f "$1/${id}.json"`)).code, 1, `uid ${uid} removed ${id}.json`);
    }
    assert.deepEqual((await listRequests(b.queueDir)).map((r) => [r.id, r.status]), [["bb22", "denied"], ["cc33", "pending"]]);
  } finally {
    await b.remove();
  }
});
