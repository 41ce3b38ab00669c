// scripts/own-session.pl, the flow's way to keep its teardown out of the terminal's reach
// where there is no setsid(1) (macOS): run as a terminal's foreground job (a process group of its
// own), the signals a closed terminal and Ctrl-C send that group reach the wrapper, which
// waits on, and never the command, which finishes and hands back its status.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { tempDir } from "../support/tmp.ts";
import { until } from "../support/until.ts";

const HELPER = new URL("../../scripts/own-session.pl", import.meta.url).pathname;

/** The helper as the flow's teardown runs it: HUP and TERM ignored (the flow's `trap ''`),
 * in a process group of its own, as a shell makes for a foreground job (detached). */
function runAsJob(args: string[], opts: { ready?: string } = {}) {
  // `ready`: a file made once the signals are ignored, right before the helper starts.
  const job = spawn("sh", ["-c", `trap '' HUP TERM; [ -z "$READY" ] || : > "$READY"; exec perl "$0" "$@"`, HELPER, ...args], {
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, READY: opts.ready ?? "" },
  });
  let err = "";
  job.stderr!.on("data", (b: Buffer) => (err += b));
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => job.on("close", (code, signal) => r({ code, signal })));
  return { job, exited, err: () => err };
}

test("HUP, TERM and INT sent to the job's group reach neither the command nor the wrapper: the command finishes and its status comes back", async (t) => {
  const dir = await tempDir(t);
  const done = join(dir, "done");
  const [started, go] = [join(dir, "started"), join(dir, "go")];
  // The command records its own session (it must not be the job's), then runs on until the
  // signals have been sent: they reach the group while it runs, however slow the machine.
  const script = `ps -o sid= -p $$ > "$1.tmp"; mv "$1.tmp" "$1"; while [ ! -e "$3" ]; do sleep 0.05; done; echo finished > "$2"; exit 7`;
  const { job, exited, err } = runAsJob(["sh", "-c", script, "sh", started, done, go]);
  await until("the command started", () => existsSync(started), { why: err });
  assert.notEqual(Number(readFileSync(started, "utf8").trim()), job.pid, "the command shares the job's session");
  for (const signal of ["SIGHUP", "SIGTERM", "SIGINT"] as const) process.kill(-job.pid!, signal);
  writeFileSync(go, "");
  assert.deepEqual(await exited, { code: 7, signal: null }, err());
  assert.equal(readFileSync(done, "utf8"), "finished\n");
});

test("a command killed by a signal is reported as 128+N; one that cannot run is 127 with its name", async () => {
  const killed = runAsJob(["sh", "-c", "kill -9 $$"]);
  assert.equal((await killed.exited).code, 137);
  const missing = runAsJob(["no-such-command-here"]);
  assert.equal((await missing.exited).code, 127);
  assert.match(missing.err(), /own-session: cannot run no-such-command-here: No such file or directory/);
});

test("no moment while the helper starts when a HUP or TERM to the job's group ends it: the command's status still comes back", async (t) => {
  const dir = await tempDir(t);
  const [done, ready] = [join(dir, "done"), join(dir, "ready")];
  const { job, exited, err } = runAsJob(["sh", "-c", `sleep 0.4; echo finished > "$1"; exit 5`, "sh", done], { ready });
  // Polled often: the signals below are meant to land while the helper starts.
  await until("the job ignoring HUP and TERM", () => existsSync(ready), { everyMs: 1, why: err });
  // From the moment the helper starts, over the time an interpreter takes to start (Node
  // resets inherited ignored signals as it starts, so a Node helper fails this).
  let gone = false;
  void exited.then(() => (gone = true));
  for (let i = 0; i < 60 && !gone; i++) {
    for (const signal of ["SIGHUP", "SIGTERM"] as const) {
      try {
        process.kill(-job.pid!, signal);
      } catch {
        break;
      }
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.deepEqual(await exited, { code: 5, signal: null }, err());
  assert.equal(readFileSync(done, "utf8"), "finished\n");
});
