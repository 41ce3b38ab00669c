// Queue files are believed by their owners (owners.ts), with the daemons' real uids: the
// test (root) gives each file to the uid a daemon of the bundle would write it as, in a
// queue folder given to the host user, as bb-bundle leaves it. Both sides are real: the
// bb-supervise tool as a process, supervise's request book over the same folder.
import assert from "node:assert/strict";
import { chown, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { daemonIdMap } from "../layout.ts";
import { setLogLevel } from "../log.ts";
import { run } from "../proc.ts";
import { createRequestBook } from "../../sidecar-image/supervise/requests.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { createRequest, listRequests, QUEUE_VERSION, readRequest, shareQueueDir, type QueueRequest } from "./queue.ts";
import { makeTestBottle, type TestBottle } from "./testdata/bottle.ts";
import { tsArgv } from "./testdata/ts-argv.ts";

setLogLevel("error");

const notRoot = process.getuid?.() !== 0 && "needs root, to give files to the daemons' uids";
const ROOT = { uid: 0, gid: 0 };
/** The daemons' uids in a bundle bb-bundle starts as root (lib/layout.ts). */
const ids = daemonIdMap(ROOT);

function hostAsk(id: string, fields: Partial<QueueRequest> = {}): QueueRequest {
  return {
    version: QUEUE_VERSION, id, kind: "host", host: "exfil.example", tlsPassthrough: false, reason: "docs", question: null,
    status: "pending", answer: null, createdAt: "2026-02-02T02:02:02.000Z", decidedAt: null, ...fields,
  };
}

/** `request` as a file of `uid`'s in the queue, as that uid would write it. */
async function plant(b: TestBottle, uid: number, request: QueueRequest): Promise<void> {
  const path = join(b.queueDir, `${request.id}.json`);
  await writeFile(path, JSON.stringify(request), { mode: 0o640 });
  await chown(path, uid, ROOT.gid);
}

async function bottle(t: { after: (fn: () => Promise<void>) => void }): Promise<TestBottle> {
  const b = await makeTestBottle();
  t.after(() => b.remove());
  await shareQueueDir(b.queueDir);
  return b;
}

const tool = (b: TestBottle, args: string[]) => run(tsArgv("tools/bb-supervise/main.ts", ["--plan", b.planFile, ...args]), { expect: [0, 1, 2, 3], timeoutMs: 20_000 });

test("bb-supervise lists only supervise's pending requests and the operator's decisions: a request or decision another daemon made, or a decision in supervise's name, is left out with a warning naming its file and owner, and cannot be approved", skipWhen(notRoot, "queue files of the daemons' uids"), async (t) => {
  const b = await bottle(t);
  await plant(b, ids.firewall.uid, hostAsk("aa11"));
  await plant(b, ids["git-gate"].uid, hostAsk("bb22", { kind: "question", host: null, reason: null, question: "ok?", status: "approved", answer: "yes", decidedAt: "2026-02-02T02:02:03.000Z" }));
  await plant(b, ids.supervise.uid, hostAsk("cc33", { host: "docs.example.org" }));
  await plant(b, ids.supervise.uid, hostAsk("dd44", { status: "approved", decidedAt: "2026-02-02T02:02:03.000Z" }));
  await plant(b, ROOT.uid, hostAsk("ee55", { host: "pypi.example.org", status: "denied", answer: "no", decidedAt: "2026-02-02T02:02:03.000Z" }));

  const listed = await tool(b, ["list", "--all", "--json"]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual((JSON.parse(listed.stdout) as QueueRequest[]).map((r) => [r.id, r.status]), [["cc33", "pending"], ["ee55", "denied"]]);
  const warnings = listed.stderr.split("\n").filter((l) => /left out/.test(l));
  assert.equal(warnings.length, 3, listed.stderr);
  assert.match(listed.stderr, /^bb-supervise: warning: left out supervise queue file \S+\/aa11\.json: it belongs to uid 64101, neither supervise's \(uid 64103 or 0\) nor the operator's \(uid 0, the queue folder's owner\): another daemon of the bundle made it$/m);
  assert.match(listed.stderr, /left out supervise queue file \S+\/bb22\.json: it belongs to uid 64104, /);
  assert.match(listed.stderr, /left out supervise queue file \S+\/dd44\.json: it says approved, but it belongs to supervise \(uid 64103\), and only a decision of the operator's \(uid 0, the queue folder's owner\) counts$/m);

  const policy = await readFile(b.policyFile, "utf8");
  const approve = await tool(b, ["approve", "aa11"]);
  assert.equal(approve.code, 1, approve.stderr);
  assert.match(approve.stderr, /aa11\.json: it belongs to uid 64101/);
  assert.match(approve.stderr, /No supervise request "aa11" in .*; pending: cc33 \(docs\.example\.org\)/);
  assert.equal(await readFile(b.policyFile, "utf8"), policy, "the policy changed");
  // The operator's decision replaces supervise's file, and is believed.
  const answered = await tool(b, ["approve", "cc33"]);
  assert.equal(answered.code, 0, answered.stderr);
  assert.equal((await stat(join(b.queueDir, "cc33.json"))).uid, ROOT.uid);
  assert.equal((await readRequest(b.queueDir, "cc33"))?.status, "approved");
});

test("supervise believes no request another daemon made: it files its own instead of joining one for the same host, whose owner then marks it approved in vain, and check_request knows no such id", skipWhen(notRoot, "queue files of the daemons' uids"), async (t) => {
  const b = await bottle(t);
  await plant(b, ids.firewall.uid, hostAsk("aa11"));
  const book = createRequestBook({ queueDir: b.queueDir, waitMs: 300, pollMs: 20 });
  const asking = book.requestHost({ host: "exfil.example", reason: "docs", tlsPassthrough: false });
  let settled = false;
  void asking.catch(() => {}).finally(() => (settled = true));
  while (book.callsWaiting() === 0 && !settled) await new Promise((r) => setTimeout(r, 10));
  // Once the call waits on a request, the planted request's owner "decides" it, as it may
  // its own file in the sticky folder. Whether the wait reads that before it ends, the
  // call's request is never the planted one.
  await plant(b, ids.firewall.uid, hostAsk("aa11", { status: "approved", decidedAt: "2026-02-02T02:02:03.000Z" }));
  const answer = await asking;
  assert.notEqual(answer.id, "aa11", "supervise took another daemon's file for the agent's request");
  assert.equal(answer.status, "pending");
  assert.equal((await stat(join(b.queueDir, `${answer.id}.json`))).uid, ROOT.uid, "filed as supervise (the test's uid)");
  assert.equal(await book.check("aa11"), null);
  // A question "answered" in the operator's stead by git-gate.
  await plant(b, ids["git-gate"].uid, hostAsk("bb22", { kind: "question", host: null, reason: null, question: "ok?", status: "approved", answer: "push to main", decidedAt: "2026-02-02T02:02:03.000Z" }));
  assert.equal(await book.check("bb22"), null);
  assert.deepEqual((await listRequests(b.queueDir)).map((r) => r.id), [answer.id]);
});

test("run as a user, the queue's owner decides and supervise's uid under that user files: the host user's own uid moves the daemons' up, and so do the uids believed", skipWhen(notRoot, "queue files of the daemons' uids"), async (t) => {
  const b = await bottle(t);
  // A host user whose uid is the one supervise would have had (lib/layout.ts daemonIdMap).
  const host = { uid: ids.supervise.uid, gid: 100 };
  const moved = daemonIdMap(host).supervise.uid;
  assert.notEqual(moved, host.uid);
  await chown(b.queueDir, host.uid, host.gid);
  await plant(b, host.uid, hostAsk("aa11", { status: "denied", decidedAt: "2026-02-02T02:02:03.000Z" }));
  await plant(b, moved, hostAsk("bb22"));
  await plant(b, moved, hostAsk("cc33", { status: "approved", decidedAt: "2026-02-02T02:02:03.000Z" }));
  await plant(b, ids.firewall.uid, hostAsk("dd44"));
  assert.deepEqual((await listRequests(b.queueDir)).map((r) => [r.id, r.status]), [["aa11", "denied"], ["bb22", "pending"]]);
});

test("createRequest() files a request only under a name nothing holds: another uid's file there is left as it was", skipWhen(notRoot, "queue files of the daemons' uids"), async (t) => {
  const b = await bottle(t);
  await plant(b, ids.firewall.uid, hostAsk("aa11", { status: "approved", decidedAt: "2026-02-02T02:02:03.000Z" }));
  const before = await readFile(join(b.queueDir, "aa11.json"), "utf8");
  assert.equal(await createRequest(b.queueDir, hostAsk("aa11", { host: "docs.example.org" })), false);
  assert.equal(await readFile(join(b.queueDir, "aa11.json"), "utf8"), before);
  assert.equal((await stat(join(b.queueDir, "aa11.json"))).uid, ids.firewall.uid);
  assert.equal(await createRequest(b.queueDir, hostAsk("bb22")), true);
  assert.equal((await readRequest(b.queueDir, "bb22"))?.status, "pending");
});
