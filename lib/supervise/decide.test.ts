import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { BbError } from "../errors.ts";
import { FirewallPolicy } from "../sidecar-config.ts";
import { answerRequest, approveRequest, BUNDLE_DOWN, denyRequest, showRequests, type ApproveContext } from "./decide.ts";
import { QUEUE_VERSION, readRequest, writeRequest, type QueueRequest } from "./queue.ts";
import { makeTestBottle, type TestBottle } from "./testdata/bottle.ts";
import { readApprovals, reloadOwed } from "./approvals.ts";

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

/** `fail`: true for a plain failure, or the error the reload throws. */
function ctx(b: TestBottle, restarts: string[], fail: boolean | Error = false): ApproveContext {
  return {
    queueDir: b.queueDir,
    policyFile: b.policyFile,
    bottleDir: b.plan.files.dir,
    now: () => NOW,
    reloadFirewall: async () => {
      restarts.push("firewall");
      if (fail) throw fail === true ? new Error("container not running") : fail;
    },
  };
}

const hostsOf = async (b: TestBottle) => (await policy(b)).hosts.map((h) => h.host);

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

test("approveRequest() leaves the request pending, and its host out of the policy and the approvals, when the firewall cannot be made to re-read it", async () => {
  const b = await makeTestBottle();
  try {
    const before = await hostsOf(b);
    await writeRequest(b.queueDir, pending("aa11", { host: "x.example.org" }));
    await assert.rejects(approveRequest(ctx(b, [], true), "aa11"), (e: BbError) => {
      assert.equal(e.code, "STATE");
      assert.match(e.message, /^Request aa11 stays pending; x\.example\.org is out of .*policy\.json again: signalling the firewall to re-read its policy with x\.example\.org failed \(container not running\)/);
      return true;
    });
    assert.equal((await readRequest(b.queueDir, "aa11"))?.status, "pending");
    assert.deepEqual(await hostsOf(b), before, "a firewall that restarts would read a host nobody approved");
    assert.deepEqual(await readApprovals(b.plan.files.dir), [], "a resume would bring it back");
    assert.equal(reloadOwed(b.plan.files.dir), false, "a plain failure: the signal never landed");
    // Denied now: the policy stays as it was, and the firewall is left be.
    const reloads: string[] = [];
    await denyRequest(ctx(b, reloads), "aa11", null);
    assert.deepEqual([reloads, await hostsOf(b)], [[], before]);
  } finally {
    await b.remove();
  }
});

test("approveRequest() retried after a failed reload adds the host again and approves it", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, pending("aa11", { host: "x.example.org" }));
    await assert.rejects(approveRequest(ctx(b, [], true), "aa11"));
    const reloads: string[] = [];
    assert.equal((await approveRequest(ctx(b, reloads), "aa11")).policyChanged, true);
    assert.deepEqual(reloads, ["firewall"]);
    assert.equal((await readRequest(b.queueDir, "aa11"))?.status, "approved");
    assert.ok((await hostsOf(b)).includes("x.example.org"));
  } finally {
    await b.remove();
  }
});

test("a failed approval of a host the policy had already (declared, or approved before) leaves it there", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, pending("aa11", { host: "API.anthropic.com" }));
    await assert.rejects(approveRequest(ctx(b, [], true), "aa11"), (e: BbError) => !/out of/.test(e.message));
    assert.deepEqual((await policy(b)).hosts, [{ host: "api.anthropic.com", tlsPassthrough: false, routed: true }]);
  } finally {
    await b.remove();
  }
});

test("an approval whose reload timed out (the signal may have landed) is owed a reload: the deny that follows has the firewall re-read the policy, once", async () => {
  const b = await makeTestBottle();
  try {
    const before = await hostsOf(b);
    await writeRequest(b.queueDir, pending("aa11", { host: "x.example.org" }));
    await writeRequest(b.queueDir, pending("bb22", { host: "y.example.org" }));
    const hung = new BbError("TIMEOUT", "Cannot signal the firewall: the Docker engine did not answer `docker kill` within 1 s");
    await assert.rejects(approveRequest(ctx(b, [], hung), "aa11"), (e: BbError) => {
      assert.equal(e.code, "TIMEOUT");
      assert.match(e.message, /^Request aa11 stays pending; x\.example\.org is out of .* again: the firewall may have re-read the policy with it before the engine stopped answering: Cannot signal/);
      assert.match(e.message, /\nOnce the engine answers, approve it again, or deny it \(which then has the firewall re-read the policy without it\)$/);
      return true;
    });
    assert.deepEqual(await hostsOf(b), before);
    assert.equal(reloadOwed(b.plan.files.dir), true);

    // The engine still hangs: denied all the same, and the error says the firewall may still let it through.
    await assert.rejects(denyRequest(ctx(b, [], hung), "aa11", null), (e: BbError) => e.code === "TIMEOUT" && /^Denied aa11, but the firewall.*\nUntil it does .* it may still let x\.example\.org through$/s.test(e.message));
    assert.equal((await readRequest(b.queueDir, "aa11"))?.status, "denied");
    assert.equal(reloadOwed(b.plan.files.dir), true, "still owed");
    // It answers again: the next deny reloads and pays the debt; the one after leaves the firewall be.
    await writeRequest(b.queueDir, pending("cc33", { host: "z.example.org" }));
    const reloads: string[] = [];
    await denyRequest(ctx(b, reloads), "bb22", null);
    await denyRequest(ctx(b, reloads), "cc33", null);
    assert.deepEqual(reloads, ["firewall"]);
    assert.equal(reloadOwed(b.plan.files.dir), false);
  } finally {
    await b.remove();
  }
});

test("a deny owed a reload whose bundle is not running has nothing live to change: denied, and the debt cleared", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, pending("aa11", { host: "x.example.org" }));
    await assert.rejects(approveRequest(ctx(b, [], new BbError("TIMEOUT", "hung")), "aa11"));
    const down = new BbError("STATE", "Cannot signal the firewall: No such container", { details: { [BUNDLE_DOWN]: true } });
    const reloads: string[] = [];
    await denyRequest(ctx(b, reloads, down), "aa11", null);
    assert.deepEqual(reloads, ["firewall"]);
    assert.equal((await readRequest(b.queueDir, "aa11"))?.status, "denied");
    assert.equal(reloadOwed(b.plan.files.dir), false);
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

test("approveRequest() refuses a request whose file changed after the operator was shown it, says what it asked and asks now, and opens nothing", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, pending("aa11", { host: "docs.python.org", reason: "read the stdlib docs" }));
    await writeRequest(b.queueDir, pending("bb22", { host: "pypi.org", reason: "install deps" }));
    const shown = await showRequests(ctx(b, []));
    assert.deepEqual([shown.requests.map((r) => r.host), shown.changed], [["docs.python.org", "pypi.org"], []]);
    // Rewritten inside the bundle between the operator's list and approve: another host, or only other words.
    await writeRequest(b.queueDir, pending("aa11", { host: "*.attacker.example", tlsPassthrough: true, reason: "read the stdlib docs" }));
    await writeRequest(b.queueDir, pending("bb22", { host: "pypi.org", reason: "install deps (approving also lets me push)" }));
    const before = await hostsOf(b);
    const reloads: string[] = [];
    await assert.rejects(approveRequest(ctx(b, reloads), "aa11"), (e: BbError) => {
      assert.equal(e.code, "STATE");
      assert.equal(
        e.message,
        "Request aa11 changed after bb-supervise first showed it: it asked for docs.python.org, and now asks for (TLS PASSTHROUGH, not scanned) *.attacker.example. " +
          "supervise never rewrites a request, so something in the bundle did: it cannot be approved. Deny it (`bb-supervise deny aa11`); the agent may ask again",
      );
      return true;
    });
    await assert.rejects(approveRequest(ctx(b, reloads), "bb22"), (e: BbError) => /^Request bb22 changed .*: it asked for pypi\.org, with other words or time\./.test(e.message));
    assert.deepEqual([reloads, await hostsOf(b), await readApprovals(b.plan.files.dir)], [[], before, []]);
    assert.equal((await readRequest(b.queueDir, "aa11"))?.status, "pending");
    // Listed again, it is still the changed one; deny is how it goes.
    assert.deepEqual((await showRequests(ctx(b, []))).changed.map((c) => [c.request.id, c.was]), [["aa11", "docs.python.org"], ["bb22", "pypi.org"]]);
    assert.equal((await denyRequest(ctx(b, []), "aa11", "rewritten")).status, "denied");
  } finally {
    await b.remove();
  }
});

test("a request first read by approve is recorded as shown then; an id that names an Object property is a request like any other", async () => {
  const b = await makeTestBottle();
  try {
    await writeRequest(b.queueDir, pending("constructor", { host: "docs.example.org" }));
    assert.deepEqual((await showRequests(ctx(b, []))).changed, []);
    assert.equal((await approveRequest(ctx(b, []), "constructor")).request.status, "approved");
    await writeRequest(b.queueDir, pending("aa11", { host: "x.example.org" }));
    await assert.rejects(approveRequest(ctx(b, [], true), "aa11"));
    // Shown by the approve that failed; rewritten before the retry.
    await writeRequest(b.queueDir, pending("aa11", { host: "y.example.org" }));
    await assert.rejects(approveRequest(ctx(b, []), "aa11"), /it asked for x\.example\.org, and now asks for y\.example\.org/);
  } finally {
    await b.remove();
  }
});
