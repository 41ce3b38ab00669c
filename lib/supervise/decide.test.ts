import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { BbError } from "../errors.ts";
import { FirewallPolicy } from "../sidecar-config.ts";
import { answerRequest, approveRequest, denyRequest, type ApproveContext } from "./decide.ts";
import { QUEUE_VERSION, readRequest, writeRequest, type QueueRequest } from "./queue.ts";
import { makeTestBottle, type TestBottle } from "./testdata/bottle.ts";
import { readApprovals } from "./approvals.ts";

const NOW = new Date("2026-02-02T02:02:02.000Z");

function pending(id: string, fields: Partial<QueueRequest>): QueueRequest {
  return {
    version: QUEUE_VERSION,
    id,
    kind: "host",
    host: null,
    tlsPassthrough: false,
    reason: null,
    question: null,
    status: "pending",
    answer: null,
    createdAt: "2026-02-02T00:00:00.000Z",
    decidedAt: null,
    ...fields,
  };
}

function ctx(b: TestBottle, restarts: string[], fail = false): ApproveContext {
  return {
    queueDir: b.queueDir,
    policyFile: b.policyFile,
    bottleDir: b.plan.files.dir,
    now: () => NOW,
    reloadFirewall: async () => {
      restarts.push("firewall");
      if (fail) throw new Error("container not running");
    },
  };
}

async function policy(b: TestBottle) {
  return FirewallPolicy.parse(JSON.parse(await readFile(b.policyFile, "utf8")));
}

test("approveRequest() adds the host once, has the firewall re-read its policy, then marks the request approved", async () => {
  const b = await makeTestBottle();
  try {
    const restarts: string[] = [];
    await writeRequest(b.queueDir, pending("aa11", { host: "docs.example.org", tlsPassthrough: true, reason: "read docs" }));
    const r = await approveRequest(ctx(b, restarts), "aa11");
    assert.equal(r.policyChanged, true);
    assert.deepEqual(restarts, ["firewall"]);
    assert.deepEqual((await policy(b)).hosts.at(-1), { host: "docs.example.org", tlsPassthrough: true, routed: false });
    const onDisk = await readRequest(b.queueDir, "aa11");
    assert.equal(onDisk?.status, "approved");
    assert.equal(onDisk?.decidedAt, NOW.toISOString());
    // Recorded in the bottle's own folder, which no container mounts, for a resume.
    assert.deepEqual(await readApprovals(b.plan.files.dir), [{ host: "docs.example.org", tlsPassthrough: true, request: "aa11", approvedAt: NOW.toISOString() }]);

    await writeRequest(b.queueDir, pending("bb22", { host: "docs.example.org" }));
    const again = await approveRequest(ctx(b, restarts), "bb22");
    assert.equal(again.policyChanged, false);
    assert.deepEqual(restarts, ["firewall", "firewall"], "the firewall re-reads even an unchanged policy (a retried approval)");
    assert.equal((await policy(b)).hosts.filter((h) => h.host === "docs.example.org").length, 1);
    assert.deepEqual((await readApprovals(b.plan.files.dir)).map((a) => [a.host, a.request]), [["docs.example.org", "bb22"]], "approved again: one entry");
  } finally {
    await b.remove();
  }
});

test("approveRequest() never turns an existing routed host into passthrough", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, pending("aa11", { host: "API.anthropic.com", tlsPassthrough: true }));
    await approveRequest(ctx(b, []), "aa11");
    assert.deepEqual((await policy(b)).hosts, [{ host: "api.anthropic.com", tlsPassthrough: false, routed: true }]);
  } finally {
    await b.remove();
  }
});

test("approveRequest() leaves the request pending when the firewall cannot be made to re-read its policy", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, pending("aa11", { host: "x.example.org" }));
    await assert.rejects(approveRequest(ctx(b, [], true), "aa11"), (e: BbError) => e.code === "STATE" && /signalling the firewall to re-read it failed/.test(e.message));
    assert.equal((await readRequest(b.queueDir, "aa11"))?.status, "pending");
    // Approved again once the firewall answers: the host is in the file already, and the
    // firewall is still told to read it.
    const reloads: string[] = [];
    await approveRequest(ctx(b, reloads), "aa11");
    assert.deepEqual(reloads, ["firewall"]);
    assert.equal((await readRequest(b.queueDir, "aa11"))?.status, "approved");
  } finally {
    await b.remove();
  }
});

test("an unknown id is NOT_FOUND and the message lists the pending ids", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, pending("aa11", { host: "x.example.org" }));
    await writeRequest(b.queueDir, pending("bb22", { kind: "question", question: "which branch?" }));
    await writeRequest(b.queueDir, { ...pending("cc33", { host: "y.example.org" }), status: "denied" });
    await assert.rejects(approveRequest(ctx(b, []), "zz99"), (e: BbError) => {
      assert.equal(e.code, "NOT_FOUND");
      assert.match(e.message, /pending: aa11 \(x\.example\.org\), bb22 \(question\)$/);
      assert.deepEqual(e.details.pending, ["aa11", "bb22"]);
      return true;
    });
    await assert.rejects(denyRequest(ctx(b, []), "../../etc/passwd", null), (e: BbError) => e.code === "NOT_FOUND");
  } finally {
    await b.remove();
  }
});

test("deciding twice, approving a question or answering a host request is refused", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, pending("aa11", { host: "x.example.org" }));
    await writeRequest(b.queueDir, pending("bb22", { kind: "question", question: "which branch?" }));
    await assert.rejects(approveRequest(ctx(b, []), "bb22"), (e: BbError) => e.code === "USAGE" && /answer bb22/.test(e.message));
    await assert.rejects(answerRequest(ctx(b, []), "aa11", "yes"), (e: BbError) => e.code === "USAGE");
    await denyRequest(ctx(b, []), "aa11", null);
    await assert.rejects(denyRequest(ctx(b, []), "aa11", null), (e: BbError) => e.code === "STATE" && /already denied/.test(e.message));
  } finally {
    await b.remove();
  }
});

test("denyRequest() records the reason and answerRequest() the answer text", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, pending("aa11", { host: "x.example.org" }));
    await writeRequest(b.queueDir, pending("bb22", { kind: "question", question: "which branch?" }));
    const denied = await denyRequest(ctx(b, []), "aa11", "use the mirror");
    assert.deepEqual([denied.status, denied.answer, denied.decidedAt], ["denied", "use the mirror", NOW.toISOString()]);
    const answered = await answerRequest(ctx(b, []), "bb22", "main");
    assert.deepEqual([answered.status, answered.answer], ["approved", "main"]);
    assert.equal((await readRequest(b.queueDir, "bb22"))?.answer, "main");
    assert.equal((await policy(b)).hosts.length, 1, "deny never touches the policy");
  } finally {
    await b.remove();
  }
});
