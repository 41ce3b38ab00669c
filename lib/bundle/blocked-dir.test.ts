import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
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
