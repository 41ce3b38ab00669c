// git-gate as a real process under an agent's loop of sessions (a repo not declared, a
// connection closed before its request, a fetch hung up on): each had a line of its own in
// the log; now the first of each, then counts, and a push after the flood is said at once.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { after, before, test } from "node:test";
import { pkt } from "./pktline.ts";
import { REPO, startGateFixture, type GateFixture } from "./testdata/gate.ts";

const AWS_KEY = "AKIAZ7QK3MPLW2XVR4TN";
const FLOOD = 500;

/** Send one request line, return everything the gate answers before it closes. */
function rawRequest(port: number, line: string | null, hangUp = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("error", reject);
    socket.on("data", (c: Buffer) => {
      chunks.push(c);
      if (hangUp) socket.end();
    });
    socket.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
    if (line === null) socket.on("connect", () => socket.end());
    else socket.write(pkt(line));
  });
}

let f: GateFixture;
before(async () => {
  f = await startGateFixture({ push: { allowedRefs: ["agent/**"], protectedBranches: [], protectedPaths: [], dlp: true } });
});
after(() => f?.stop());

test("sessions in a loop (refused, dropped, hung up on): the first of each line is logged, the rest counted; a push after them is said at once", async () => {
  for (let i = 0; i < FLOOD; i++) {
    assert.match(await rawRequest(f.gate.port, "git-upload-pack /example.com/acme/undeclared\0host=127.0.0.1\0"), /ERR git-gate: /);
    await rawRequest(f.gate.port, null);
    // A fetch of the declared repo, dropped once git answers: git says the far end hung up.
    await rawRequest(f.gate.port, `git-upload-pack /${REPO}\0host=127.0.0.1\0`, true);
  }
  await f.commit("leak.txt", `key=${AWS_KEY}\n`);
  const push = await f.git(f.work, ["push", "origin", "HEAD:refs/heads/agent/leak"], [1]);
  assert.match(push.stderr, /\[dlp\] refs\/heads\/agent\/leak/);
  await f.gate.stop(); // SIGTERM: counts still pending are said on the way out

  const log = f.gate.stderr();
  assert.ok(log.length < 4096, `git-gate wrote ${log.length} bytes of log:\n${log.slice(0, 1000)}`);
  const accounted = (first: RegExp) =>
    log.split("\n").filter((l) => first.test(l)).reduce((n, l) => n + Number(/ \((\d+) more like it in the last \d+ s\)$/.exec(l)?.[1] ?? 1), 0);
  assert.equal(accounted(/^git-gate: warning: refused: .*undeclared/), FLOOD, log);
  assert.equal(accounted(/^git-gate: warning: dropped connection from 127\.0\.0\.1: /), FLOOD, log);
  // The clone's fetch, then the loop's.
  assert.equal(accounted(/^git-gate: fetch example\.com\/acme\/widget from 127\.0\.0\.1/), FLOOD + 1, log);
  // git says so of most of them, not all: it may have finished before it saw the hang-up.
  assert.ok(accounted(/^git-gate: warning: upload-pack example\.com\/acme\/widget: fatal: the remote end hung up/) > 1, log);
  assert.match(log, /^git-gate: push example\.com\/acme\/widget from 127\.0\.0\.1$/m);
});
