import assert from "node:assert/strict";
import { chmod, chown, mkdir, stat, symlink } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import type { BbError } from "../errors.ts";
import { daemonIdMap } from "../layout.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { firewallBlockedDir } from "./blocked-dir.ts";

test("firewallBlockedDir() leaves the folder yours, group-writable and sticky, when bb-bundle runs as you (again on a resume)", async (t) => {
  const state = await tempDir(t);
  const you = { uid: process.getuid!(), gid: process.getgid!() };
  for (let i = 0; i < 2; i++) {
    const dir = await firewallBlockedDir(state, you.uid === 0 ? { uid: 1000, gid: 1000 } : you);
    assert.equal(dir, join(state, "firewall-blocked"));
    const st = await stat(dir);
    assert.deepEqual([st.uid, st.mode & 0o7777], [you.uid, 0o1770]);
  }
});

test("firewallBlockedDir() run as root gives the folder to the firewall's uid alone (0700)", skipWhen(process.getuid?.() !== 0 && "needs root to chown", "chown to the firewall"), async (t) => {
  const state = await tempDir(t);
  const st = await stat(await firewallBlockedDir(state, { uid: 0, gid: 0 }));
  const firewall = daemonIdMap({ uid: 0, gid: 0 }).firewall;
  assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [firewall.uid, firewall.gid, 0o700]);
});

test("firewallBlockedDir() refuses a symlink planted at its path, naming it, and leaves the symlink's target as it was", async (t) => {
  const state = await tempDir(t);
  const elsewhere = join(state, "elsewhere");
  await mkdir(elsewhere, { mode: 0o700 });
  await symlink(elsewhere, join(state, "firewall-blocked"));
  const you = { uid: process.getuid!(), gid: process.getgid!() };
  for (const host of [you, { uid: 0, gid: 0 }]) {
    await assert.rejects(firewallBlockedDir(state, host), (e: BbError) => {
      assert.equal(e.code, "STATE");
      assert.ok(e.message.includes(`${join(state, "firewall-blocked")} is a symlink`), e.message);
      return true;
    });
    const st = await stat(elsewhere);
    assert.deepEqual([st.uid, st.mode & 0o7777], [you.uid, 0o700]);
  }
});

test("firewallBlockedDir() refuses a folder someone else made at its path, naming it and its owner", skipWhen(process.getuid?.() !== 0 && "needs root to make another uid's folder", "another uid's folder"), async (t) => {
  const state = await tempDir(t);
  const dir = join(state, "firewall-blocked");
  await mkdir(dir, { mode: 0o777 });
  await chown(dir, 12345, 12345);
  await chmod(dir, 0o777);
  await assert.rejects(firewallBlockedDir(state, { uid: 1000, gid: 1000 }), (e: BbError) => e.code === "STATE" && e.message.startsWith(`${dir} belongs to uid 12345, not to you (uid 0)`));
  const st = await stat(dir);
  assert.deepEqual([st.uid, st.mode & 0o7777], [12345, 0o777]);
  // Yours (root's here) it is taken over, as an earlier start left it.
  await chown(dir, 0, 0);
  await firewallBlockedDir(state, { uid: 1000, gid: 1000 });
  assert.equal((await stat(dir)).mode & 0o7777, 0o1770);
});
