import assert from "node:assert/strict";
import { chown, mkdir, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { which } from "../../lib/proc.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { prepareGitGateData } from "./store.ts";

const cannot = process.getuid?.() !== 0 ? "making a folder as another uid needs root" : !(await which("setpriv")) ? "no setpriv on PATH" : false;

test("prepareGitGateData() has git-gate's uid make its folder (0700) in the volume, leaves the volume's mode as it was, keeps a folder git-gate has, and moves one of another uid's aside", skipWhen(cannot, "git-gate's folder in its volume"), async (t) => {
  const store = await tempDir(t);
  const data = join(store, "data");
  const gitGate = { uid: 64199, gid: 0 };
  assert.match((await prepareGitGateData(store, data, gitGate))!, /^made git-gate's folder /);
  const made = await stat(data);
  assert.deepEqual([made.uid, made.mode & 0o7777, (await stat(store)).mode & 0o7777], [64199, 0o700, 0o700]);
  await mkdir(join(data, "repos"));
  assert.equal(await prepareGitGateData(store, data, gitGate), null, "a resumed bottle keeps its mirrors");
  assert.deepEqual(await readdir(data), ["repos"]);

  // The daemon uids moved (another host user): the old folder goes aside, a new one is made.
  await chown(data, 64198, 0);
  assert.match((await prepareGitGateData(store, data, gitGate))!, /the one there was uid 64198's, now .*stale-64198-/);
  assert.equal((await stat(data)).uid, 64199);
  assert.deepEqual((await readdir(data)), []);
  assert.equal((await readdir(store)).filter((n) => n.startsWith("stale-64198-")).length, 1);
});
