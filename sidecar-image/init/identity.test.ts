import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "../../tests/support/tmp.ts";
import { daemonIds } from "../../lib/layout.ts";
import { asDaemon, ensurePasswdEntries, parseDaemonIds } from "./identity.ts";

test("parseDaemonIds() reads service=uid:gid pairs and names the bad part", () => {
  assert.deepEqual(parseDaemonIds("firewall=64101:1000, git-gate=1000:1000"), { firewall: { uid: 64101, gid: 1000 }, "git-gate": { uid: 1000, gid: 1000 } });
  assert.deepEqual(parseDaemonIds(undefined), {});
  assert.deepEqual(parseDaemonIds(""), {});
  assert.throws(() => parseDaemonIds("firewall=root"), /BB_DAEMON_IDS .*"firewall=root"/);
  assert.throws(() => parseDaemonIds("proxy=1:1"), /"proxy=1:1"/);
});

test("daemonIds() gives every daemon a uid of its own, never the host user's (which owns the bottle's folders), all in the host group", () => {
  for (const host of [{ uid: 1000, gid: 1000 }, { uid: 0, gid: 0 }]) {
    const ids = parseDaemonIds(daemonIds(host));
    const uids = [ids.firewall!.uid, ids.egress!.uid, ids.supervise!.uid, ids["git-gate"]!.uid, host.uid];
    assert.equal(new Set(uids).size, 5, `uids collide: ${uids}`);
    for (const s of ["firewall", "egress", "supervise", "git-gate"] as const) assert.equal(ids[s]!.gid, host.gid);
  }
  assert.deepEqual(parseDaemonIds(daemonIds({ uid: 1000, gid: 1000 }))["git-gate"], { uid: 64104, gid: 1000 });
  // A host user whose uid is one the daemons would take pushes them aside.
  for (const uid of [64102, 64104]) {
    const clash = parseDaemonIds(daemonIds({ uid, gid: 20 }));
    assert.equal(new Set([clash.firewall!.uid, clash.egress!.uid, clash.supervise!.uid, clash["git-gate"]!.uid, uid]).size, 5);
  }
});

test("asDaemon() runs the argv through setpriv with no groups, no capabilities and no_new_privs", () => {
  assert.deepEqual(asDaemon(["node", "/opt/bb/sidecar/egress.js"], { uid: 64102, gid: 1000 }), [
    "setpriv", "--reuid=64102", "--regid=1000", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
    "node", "/opt/bb/sidecar/egress.js",
  ]);
});

test("ensurePasswdEntries() adds each unknown uid once, with no home anyone can write, and keeps what is there", async (t) => {
  const passwd = join(await tempDir(t), "passwd");
  await writeFile(passwd, "root:x:0:0:root:/root:/bin/bash\nbb:x:1000:1000::/home/bb:/usr/sbin/nologin");
  const ids = { firewall: { uid: 64101, gid: 1000 }, "git-gate": { uid: 1000, gid: 1000 }, supervise: { uid: 501, gid: 20 } };
  ensurePasswdEntries(ids, passwd);
  ensurePasswdEntries(ids, passwd); // a restarted init adds nothing twice
  assert.equal(
    await readFile(passwd, "utf8"),
    "root:x:0:0:root:/root:/bin/bash\nbb:x:1000:1000::/home/bb:/usr/sbin/nologin\n" +
      "bb-firewall:x:64101:1000:bot-bottle firewall:/nonexistent:/usr/sbin/nologin\n" +
      "bb-supervise:x:501:20:bot-bottle supervise:/nonexistent:/usr/sbin/nologin\n",
  );
  assert.throws(() => ensurePasswdEntries(ids, join(passwd, "missing")), /Cannot read .*missing/);
});
