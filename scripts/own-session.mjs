#!/usr/bin/env node
// own-session.mjs CMD [ARG...]: run CMD in a session of its own and exit with its status.
//
// flow.sh's teardown must outlive a terminal closed mid-way: the terminal's HUP reaches the
// flow's whole process group, and Node and docker, which the teardown's bb-cleanup runs,
// would die of it. A new session has no terminal to hang up. setsid(1) is Linux-only;
// Node's detached spawn calls setsid(2) on every POSIX system, macOS included. Node resets
// inherited ignored signals as it starts, so until this file runs (~40 ms) a HUP still
// ends it: flow.sh prefers setsid(1) where there is one.
//
// This wrapper stays in the flow's group and waits, so the flow still waits for the
// teardown: HUP, TERM and INT are ignored here, as the flow ignores them (or defers INT)
// while it tears down.
import { spawn } from "node:child_process";
import os from "node:os";
import process from "node:process";

const [cmd, ...args] = process.argv.slice(2);
if (!cmd || cmd === "--help" || cmd === "-h") {
  process.stderr.write("usage: own-session.mjs CMD [ARG...]  (runs CMD in a new session, exits with its status)\n");
  process.exit(cmd ? 0 : 2);
}
for (const signal of ["SIGHUP", "SIGTERM", "SIGINT"]) process.on(signal, () => {});
const child = spawn(cmd, args, { detached: true, stdio: "inherit" });
child.on("error", (e) => {
  process.stderr.write(`own-session: cannot run ${cmd}: ${e.message}\n`);
  process.exit(127);
});
child.on("exit", (code, signal) => process.exit(code ?? 128 + (os.constants.signals[signal] ?? 0)));
