// bin/<tool> and bin/_run, run for real over a small checkout of their own: the bundle in
// dist/ when it is current, the source (through tsx) when it is older or BB_FROM_SOURCE=1,
// however the wrapper is invoked; and no helper program (dirname, head) started before
// node, since every tool start pays for each one, several times per bottle on the start
// flow's critical path.
import assert from "node:assert/strict";
import { chmod, copyFile, mkdir, symlink, utimes, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { ANY_EXIT, run } from "../lib/proc.ts";
import { tempDir, writeTree } from "./support/tmp.ts";
import { REPO } from "./support/tools.ts";

/** A checkout with bin/bb-list and bin/_run as they are here, a bundle and a source that
 * say which ran and with what arguments, and no smolmachine-pack/ (find's staleness check
 * must take a folder that is not there). */
async function checkout(dir: string): Promise<string> {
  await writeTree(dir, {
    "dist/bb-list.js": `console.log(JSON.stringify({ ran: "bundle", args: process.argv.slice(2) }));\n`,
    "tools/bb-list/main.ts": `const args: string[] = process.argv.slice(2);\nconsole.log(JSON.stringify({ ran: "source", args }));\n`,
    "lib/x.ts": "export const x = 1;\n",
  });
  await mkdir(join(dir, "bin"));
  for (const f of ["_run", "bb-list"]) {
    await copyFile(join(REPO, "bin", f), join(dir, "bin", f));
    await chmod(join(dir, "bin", f), 0o755);
  }
  await symlink(join(REPO, "node_modules"), join(dir, "node_modules"));
  // The bundle is newer than every source: current.
  await utimes(join(dir, "lib/x.ts"), new Date(1000), new Date(1000));
  await utimes(join(dir, "tools/bb-list/main.ts"), new Date(1000), new Date(1000));
  return dir;
}

/** A folder of stand-ins for dirname and head that record being run, then do their job. */
async function recordingHelpers(dir: string): Promise<{ path: string; ran: string }> {
  const bin = join(dir, "helpers");
  const ran = join(dir, "helpers-ran");
  await mkdir(bin);
  for (const name of ["dirname", "head"]) {
    const real = (await run(["sh", "-c", `command -v ${name}`])).stdout.trim();
    await writeFile(join(bin, name), `#!/bin/sh\necho ${name} >> '${ran}'\nexec '${real}' "$@"\n`);
    await chmod(join(bin, name), 0o755);
  }
  return { path: bin, ran };
}

const said = (stdout: string) => JSON.parse(stdout.trim().split("\n").at(-1)!) as { ran: string; args: string[] };

test("a current bundle runs with the arguments as given, whether bin/<tool> is called by path, from PATH or by name in bin/, with no helper program started first", async (t) => {
  const root = await tempDir(t);
  const dir = await checkout(join(root, "co"));
  const helpers = await recordingHelpers(root);
  const PATH = `${helpers.path}:${process.env.PATH}`;
  const ways: [string, string[], string][] = [
    ["absolute path", [join(dir, "bin/bb-list"), "a", "b c"], root],
    ["relative path", ["bin/bb-list", "a", "b c"], dir],
    ["from PATH", ["sh", "-c", 'PATH="$0/bin:$PATH" exec bb-list a "b c"', dir], root],
    ["by name in bin/", ["sh", "bb-list", "a", "b c"], join(dir, "bin")],
  ];
  for (const [how, argv, cwd] of ways) {
    const r = await run(argv, { cwd, env: { PATH, BB_FROM_SOURCE: undefined }, expect: ANY_EXIT });
    assert.equal(r.code, 0, `${how}: ${r.stderr}`);
    assert.deepEqual(said(r.stdout), { ran: "bundle", args: ["a", "b c"] }, how);
    assert.equal(r.stderr, "", how);
  }
  assert.equal(existsSync(helpers.ran), false, "bin/ started a helper program before node");
});

test("a source newer than the bundle, or BB_FROM_SOURCE=1, runs the source through tsx, the former saying which file is newer", async (t) => {
  const root = await tempDir(t);
  const dir = await checkout(join(root, "co"));
  const fromSource = await run([join(dir, "bin/bb-list"), "x"], { cwd: root, env: { BB_FROM_SOURCE: "1" }, expect: ANY_EXIT, timeoutMs: 60_000 });
  assert.equal(fromSource.code, 0, fromSource.stderr);
  assert.deepEqual(said(fromSource.stdout), { ran: "source", args: ["x"] });
  assert.doesNotMatch(fromSource.stderr, /older/);

  await utimes(join(dir, "lib/x.ts"), new Date(), new Date(Date.now() + 60_000));
  const stale = await run(["bin/bb-list", "y"], { cwd: dir, env: { BB_FROM_SOURCE: undefined }, expect: ANY_EXIT, timeoutMs: 60_000 });
  assert.equal(stale.code, 0, stale.stderr);
  assert.deepEqual(said(stale.stdout), { ran: "source", args: ["y"] });
  assert.equal(stale.stderr.trim(), "bb-list: dist/ is older than lib/x.ts; running from source (npm run build makes it fast again)");
});
