// egress's answer to a reload under a flooded log: lib/log.ts leaves out warnings, errors
// and debug lines while its stderr is read slower than it is written, so the line saying
// a reload kept the previous routes (what an operator or bb-supervise waits for) must not
// be one of them. egress as a real process, its log not read while a loop of requests to
// a plain-HTTP upstream this test owns fills it with debug lines.
import assert from "node:assert/strict";
import http from "node:http";
import type net from "node:net";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { startDaemon } from "../../tests/support/daemon-process.ts";
import { plainVia } from "../../tests/support/raw-http.ts";
import { tempDir } from "../../tests/support/tmp.ts";

const EGRESS = new URL("./main.ts", import.meta.url).pathname;
/** Names as long as DNS allows: each request's debug line is about 300 bytes. */
const HOST = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(50)}.test`;
/** Over the MiB lib/log.ts lets wait unwritten, plus what the pipe holds. */
const FLOOD = 6000;

/** A live process's scheduler state, what it waits in, and its threads' states, from /proc. */
async function processState(pid: number): Promise<string> {
  const read = (f: string) => readFile(`/proc/${pid}/${f}`, "utf8").catch(() => "?");
  if ((await read("stat")) === "?") return "has exited";
  const state = /^State:\s*(.*)$/m.exec(await read("status"))?.[1];
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => []);
  const threads = await Promise.all(tasks.map(async (t) => `${(await read(`task/${t}/comm`)).trim()}:${(await read(`task/${t}/stat`)).split(") ")[1]?.[0]}`));
  return `is ${state}, waiting in ${(await read("wchan")) || "-"}; threads ${threads.join(" ")}`;
}

test("a bad routes file reloaded while egress's log is flooded: the line saying the previous routes are kept is not left out", async (t) => {
  const upstream = http.createServer({ keepAliveTimeout: 120_000 }, (_req, res) => res.end("ok"));
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  t.after(() => new Promise((r) => upstream.close(r)));
  const { port } = upstream.address() as net.AddressInfo;
  const dir = await tempDir(t, "bb-egress-reload-");
  const routes = join(dir, "routes.json");
  await writeFile(routes, JSON.stringify({ version: 1, routes: [] }));
  const egress = await startDaemon(EGRESS, ["--listen", "127.0.0.1:0", "--routes", routes, "--resolve", `${HOST}=127.0.0.1:${port}`], { BB_LOG_LEVEL: "debug" });
  t.after(() => egress.stop());

  egress.child.stderr!.pause(); // nobody reads the log for now: egress's own queue grows
  const c = await plainVia(egress.port);
  const get = async (path: string) => {
    const res = await c.proxyRequest("GET", `http://${HOST}/${path}`).catch(async (e: Error) => {
      // Once in about thirty runs on a loaded machine a request here went unanswered for
      // 10 s, cause not yet found: say what egress was doing.
      throw new Error(`request ${path}: ${e.message}; egress ${await processState(egress.pid)}`, { cause: e });
    });
    assert.equal(res.status, 200, res.body);
  };
  for (let i = 0; i < FLOOD; i++) await get(String(i));
  await writeFile(routes, "{ not json");
  egress.signal("SIGHUP");
  await new Promise((r) => setTimeout(r, 1000)); // the reload is read and refused meanwhile
  const said = egress.waitForLog(/routes reload failed, keeping the previous routes: /, 20_000).then(
    () => true,
    () => false,
  );
  egress.child.stderr!.resume();
  // Lines after the queue is short again: the first says how many were left out.
  const noted = egress.waitForLog(/log line\(s\) left out/, 20_000).then(
    () => true,
    () => false,
  );
  let done = false;
  void noted.then(() => (done = true));
  for (let i = 0; !done && i < 200; i++) {
    await get(`after-${i}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  c.socket.destroy();
  const answered = await said;
  await egress.stop();
  const log = egress.stderr();
  assert.ok(await noted, "the log was never flooded: the test shows nothing");
  assert.ok(answered, `the reload's answer was left out of the log:\n${log.split("\n").filter((l) => !/debug: GET/.test(l)).join("\n")}`);
});
