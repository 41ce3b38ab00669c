import assert from "node:assert/strict";
import { test } from "node:test";
import { isBbError } from "../errors.ts";
import * as A from "./argv.ts";
import { capabilities, parseVersion } from "./version.ts";

const caps = (v: string) => capabilities(parseVersion(v));
const spec: A.CreateSpec = { name: "bb-x1", from: "/c/a.smolmachine", allowCidrs: ["127.0.0.1/32"], env: { A: "1", HTTPS_PROXY: "http://127.0.0.1:5/" } };

test("createArgv() puts the name last (positional) on 0.8.x and behind --name from 1.0.2", () => {
  const tail = ["--from", "/c/a.smolmachine", "--net", "--allow-cidr", "127.0.0.1/32", "-e", "A=1", "-e", "HTTPS_PROXY=http://127.0.0.1:5/"];
  for (const v of ["0.8.0", "0.8.1", "0.9.3"]) assert.deepEqual(A.createArgv("smolvm", caps(v), spec), ["smolvm", "machine", "create", ...tail, "bb-x1"], v);
  for (const v of ["1.0.2", "1.8.0", "2.0.0"]) assert.deepEqual(A.createArgv("smolvm", caps(v), spec), ["smolvm", "machine", "create", "--name", "bb-x1", ...tail], v);
});

test("createArgv() passes the machine's size as --cpus and --mem only when given", () => {
  const sized = A.createArgv("smolvm", caps("1.8.0"), { ...spec, cpus: 2, memMiB: 8192 });
  assert.deepEqual(sized.slice(sized.indexOf("--cpus"), sized.indexOf("-e")), ["--cpus", "2", "--mem", "8192"]);
  assert.ok(!A.createArgv("smolvm", caps("0.8.0"), spec).some((a) => a === "--cpus" || a === "--mem"));
});

test("createArgv() passes --net whenever there is an allowlist and no network flags without one", () => {
  const argv = A.createArgv("smolvm", caps("1.8.0"), { ...spec, allowCidrs: ["127.0.0.16/32", "10.0.0.2/32"] });
  assert.deepEqual(argv.slice(5, 10), ["--from", "/c/a.smolmachine", "--net", "--allow-cidr", "127.0.0.16/32"]);
  assert.equal(argv.filter((a) => a === "--allow-cidr").length, 2);
  const offline = A.createArgv("smolvm", caps("1.8.0"), { ...spec, allowCidrs: [] });
  assert.ok(!offline.includes("--net") && !offline.includes("--allow-cidr"));
});

test("deleteArgv() is positional with -f on 0.8.x and --name with -f from 1.0.2", () => {
  assert.deepEqual(A.deleteArgv("smolvm", caps("0.8.0"), "m1"), ["smolvm", "machine", "delete", "-f", "m1"]);
  assert.deepEqual(A.deleteArgv("smolvm", caps("1.0.2"), "m1"), ["smolvm", "machine", "delete", "--name", "m1", "-f"]);
});

test("start/stop/status take --name on every supported version", () => {
  for (const v of ["0.8.0", "0.8.1", "1.0.2", "1.8.0"]) {
    assert.deepEqual(A.startArgv("s", caps(v), "m"), ["s", "machine", "start", "--name", "m"]);
    assert.deepEqual(A.stopArgv("s", caps(v), "m"), ["s", "machine", "stop", "--name", "m"]);
    assert.deepEqual(A.statusArgv("s", caps(v), "m"), ["s", "machine", "status", "--name", "m"]);
  }
});

test("execArgv() puts flags before -- and the guest argv after it, untouched", () => {
  const argv = A.execArgv("smolvm", caps("0.8.0"), { name: "m", argv: ["sh", "-c", "echo $HOME; exit 3"], env: { HOME: "/home/node" }, workdir: "/w", interactive: true, tty: true });
  assert.deepEqual(argv, ["smolvm", "machine", "exec", "--name", "m", "-e", "HOME=/home/node", "-w", "/w", "-i", "-t", "--", "sh", "-c", "echo $HOME; exit 3"]);
  assert.deepEqual(A.execArgv("smolvm", caps("1.8.0"), { name: "m", argv: ["--version"] }), ["smolvm", "machine", "exec", "--name", "m", "--", "--version"]);
});

test("cp uses MACHINE:PATH on the guest side and refuses host paths with a colon", () => {
  assert.deepEqual(A.cpInArgv("s", caps("0.8.0"), "m", "/tmp/a", "/home/node/a"), ["s", "machine", "cp", "/tmp/a", "m:/home/node/a"]);
  assert.deepEqual(A.cpOutArgv("s", caps("1.8.0"), "m", "/etc/os-release", "/tmp/o"), ["s", "machine", "cp", "m:/etc/os-release", "/tmp/o"]);
  assert.throws(() => A.cpInArgv("s", caps("0.8.0"), "m", "/tmp/a:b", "/x"), (e) => isBbError(e) && e.code === "SMOLVM");
  assert.throws(() => A.cpInArgv("s", caps("0.8.0"), "m", "/tmp/a", "relative"), /must be absolute/);
});

test("machine names that smolvm could read as a flag or a cp target are refused", () => {
  for (const bad of ["-rf", "a:b", "", "a b", "../x"]) {
    assert.throws(() => A.startArgv("s", caps("1.8.0"), bad), (e) => isBbError(e) && e.code === "SMOLVM", JSON.stringify(bad));
  }
  assert.throws(() => A.execArgv("s", caps("1.8.0"), { name: "m", argv: ["true"], env: { "A=B": "x" } }), /not a valid variable name/);
  assert.throws(() => A.execArgv("s", caps("1.8.0"), { name: "m", argv: [] }), /empty command/);
});

test("ls, pack create and --version have one shape on every version", () => {
  assert.deepEqual(A.lsArgv("s"), ["s", "machine", "ls", "--json"]);
  assert.deepEqual(A.packCreateArgv("s", "localhost:5000/a:b", "/c/x"), ["s", "pack", "create", "--image", "localhost:5000/a:b", "-o", "/c/x"]);
  assert.deepEqual(A.versionArgv("s"), ["s", "--version"]);
});
