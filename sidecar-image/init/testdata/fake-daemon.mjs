// A stand-in daemon for the init tests (plain JS so `node` runs it as is).
//   node fake-daemon.mjs NAME [MODE] [ARG]
// MODE serve (default): print "ready NAME pid=N", stay up, report SIGHUP/SIGTERM.
//      listen PORT: serve, and accept TCP connections on 127.0.0.1:PORT.
//      crash MS: exit 3 after MS milliseconds.
//      stubborn: ignore SIGTERM.
//      chatty N: write N numbered lines in small pieces that split lines, then serve.
//      flood FILE: write lines to stdout as fast as they are taken, one 60 KB piece at a
//                  time, keeping in FILE the count of bytes taken so far.
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import process from "node:process";

const [name, mode = "serve", arg] = process.argv.slice(2);
process.on("SIGHUP", () => process.stdout.write(`${name} got SIGHUP\n`));
process.on("SIGTERM", () => {
  if (mode === "stubborn") return void process.stdout.write(`${name} ignores SIGTERM\n`);
  process.stdout.write(`${name} got SIGTERM`); // no newline: init must still print it whole
  process.exit(0);
});
process.stdout.write(`ready ${name} pid=${process.pid}\n`);
process.stderr.write(`stderr of ${name}\n`);
if (mode === "crash") setTimeout(() => process.exit(3), Number(arg));
if (mode === "listen") createServer((s) => s.end()).listen(Number(arg), "127.0.0.1");
if (mode === "chatty") {
  const text = Array.from({ length: Number(arg) }, (_, i) => `${name} line ${i} ${"x".repeat(i % 50)}\n`).join("");
  let at = 0;
  const next = () => {
    if (at >= text.length) return;
    const n = 1 + Math.floor(Math.random() * 40);
    process.stdout.write(text.slice(at, at + n));
    at += n;
    setImmediate(next);
  };
  next();
}
if (mode === "flood") {
  const piece = `${name} ${"y".repeat(200)}\n`.repeat(300);
  let taken = 0;
  const more = () => process.stdout.write(piece, () => ((taken += piece.length), more()));
  more();
  setInterval(() => writeFileSync(arg, String(taken)), 50);
}
setInterval(() => {}, 1 << 30);
