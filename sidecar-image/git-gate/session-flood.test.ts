// git-gate as a real process under an agent's loop of sessions (a repo not declared, a
// connection closed before its request, a fetch hung up on): each had a line of its own in
// the log; now the first of each, then counts, and a push after the flood is said at once.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { after, before, test } from "node:test";
import { WINDOW_MS } from "../../lib/log-limit.ts";
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
  const began = Date.now();
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
  // A count line is said per window, so how many the log may hold depends on how long the
  // flood took (over a minute under deno on a loaded machine): ticks of the window timer
  // while it ran, and the one on the way out.
  const windows = Math.floor((Date.now() - began) / WINDOW_MS) + 1;

  const log = f.gate.stderr();
  // Not a line per session: a handful of distinct lines, each said once and then at most
  // once a window (a count line, or said anew after a quiet window).
  const said = new Map<string, number>();
  for (const l of log.trimEnd().split("\n")) {
    const line = l.replace(/ \(\d+ more like it in the last \d+ s\)$/, "");
    said.set(line, (said.get(line) ?? 0) + 1);
  }
  const tally = [...said].map(([l, n]) => `${n}x ${l}`).join("\n");
  assert.ok(said.size <= 12, `git-gate wrote ${said.size} distinct lines:\n${tally.slice(0, 2000)}`);
  for (const [line, n] of said) assert.ok(n <= 1 + windows, `${n} lines of "${line}" in ${windows} window(s) of counting:\n${tally}`);
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
