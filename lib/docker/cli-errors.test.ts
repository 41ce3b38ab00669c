import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { holdCliErrors, mayBeCliLines, RUNTIME_LINE_STARTS, runtimeLineOff } from "./cli-errors.ts";

const b = (s: string) => Buffer.from(s, "latin1");

test("mayBeCliLines() holds only a start that is, or is still becoming, the docker CLI's own lines", () => {
  for (const held of ["", "E", "Error response from", "Error response from daemon: No such container: x\n", "Cannot connect to the Docker daemon at unix:///x. Is the docker daemon running?\n", "error during connect: Get x\nError response from daemon: y"]) {
    assert.equal(mayBeCliLines(b(held)), true, JSON.stringify(held));
  }
  for (const passed of ["x", "Error: boom", "Err\xff", "Error response from daemon: x\nout\n", "\n", " Error response from daemon: x"]) {
    assert.equal(mayBeCliLines(b(passed)), false, JSON.stringify(passed));
  }
});

test("holdCliErrors() passes the command's stderr through as it comes and holds the CLI's line until released", async () => {
  const run = async (chunks: string[]) => {
    const source = new PassThrough();
    const sink = new PassThrough();
    const out: Buffer[] = [];
    sink.on("data", (c: Buffer) => out.push(c));
    const held = holdCliErrors(source, sink);
    const seen: string[] = [];
    for (const c of chunks) {
      source.write(b(c));
      await new Promise((r) => setImmediate(r));
      seen.push(Buffer.concat(out).toString("latin1"));
    }
    source.end();
    await new Promise((r) => source.on("end", r));
    return { held, seen, out: () => Buffer.concat(out).toString("latin1") };
  };
  const own = await run(["Er", "ror: boom\n", "\xff more"]);
  assert.deepEqual(own.seen, ["", "Error: boom\n", "Error: boom\n\xff more"], "held past the point it could be the CLI's");
  assert.equal(own.held.text(), "");
  assert.equal(own.held.said(), "Error: boom\n\uFFFD more", "what the stream said, held or not");
  own.held.release();
  assert.equal(own.out(), "Error: boom\n\xff more");

  const cli = await run(["Error response from daemon: Container x is not running\n"]);
  assert.deepEqual([cli.out(), cli.held.text(), cli.held.said()], ["", "Error response from daemon: Container x is not running\n", "Error response from daemon: Container x is not running\n"]);
  cli.held.release();
  assert.equal(cli.out(), "Error response from daemon: Container x is not running\n", "released, it was the command's after all");
  cli.held.release();
  assert.equal(cli.out(), "Error response from daemon: Container x is not running\n", "released twice");
});

test("holdCliErrors() on stdout holds only the runtime's refusal in its full form, and releases it where the caller says", async () => {
  const runtime = "OCI runtime exec failed: exec failed: unable to start container process: exec: \"/usr/bin/env\": stat /usr/bin/env: no such file or directory: unknown\r\n";
  assert.equal(mayBeCliLines(b(runtime), RUNTIME_LINE_STARTS), true);
  for (const own of ["OCI runtime exec failed: mine\n", "Error response from daemon: x\n", "out\n"]) assert.equal(mayBeCliLines(b(own), RUNTIME_LINE_STARTS), false, own);
  const source = new PassThrough();
  const [stdout, stderr] = [new PassThrough(), new PassThrough()];
  const text = (s: PassThrough) => (s.read() as Buffer | null)?.toString("latin1") ?? "";
  const held = holdCliErrors(source, stdout, RUNTIME_LINE_STARTS);
  source.end(b(runtime));
  await new Promise((r) => source.on("end", r));
  assert.equal(text(stdout), "");
  held.release(stderr);
  assert.deepEqual([text(stdout), text(stderr)], ["", runtime]);
});

test("runtimeLineOff() moves the runtime's refusal (126, 127) from stdout to the end of stderr, and nothing else", () => {
  const oci = 'OCI runtime exec failed: exec failed: unable to start container process: exec: "x": executable file not found in $PATH: unknown\n';
  const r = (code: number, stdout: string, stderr = "") => ({ argv: ["docker", "exec"], code, stdout, stderr });
  assert.deepEqual(runtimeLineOff(r(126, oci, "before\n")), r(126, "", `before\n${oci}`));
  assert.deepEqual(runtimeLineOff(r(127, oci)), r(127, "", oci));
  // The command's own: another code, other words, or more than the runtime's line.
  for (const own of [r(0, oci), r(1, oci), r(126, "OCI runtime exec failed: mine\n"), r(126, `${oci}and more\n`), r(126, "OCI r"), r(126, "")]) {
    assert.deepEqual(runtimeLineOff(own), own);
  }
});
