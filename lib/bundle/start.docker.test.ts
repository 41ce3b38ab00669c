// bb-bundle against a real Docker engine: what each daemon in the started bundle may read,
// checked under the uid and gid the bundle's init gave it (read from the bundle's /proc).
import assert from "node:assert/strict";
import { chmod } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { ANY_EXIT, run, which } from "../proc.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { tempDir, writeTree } from "../../tests/support/tmp.ts";
import { runTool } from "../../tests/support/tools.ts";

const notRoot = process.getuid?.() !== 0 && "bb-bundle runs as you: git-gate reads your own 0600 key file and the CA key is your group's, as the daemons' is";
const noDocker = !(await which("docker")) && "no docker CLI on PATH";

test("run as root, the SSH identity is git-gate's alone and the CA key the firewall's: supervise and the firewall, which the agent talks to, read neither", skipWhen(notRoot || noDocker, "bundle file modes as root"), async (t) => {
  const dir = await tempDir(t);
  const state = join(dir, "state");
  const identity = join(dir, "id_ed25519");
  const keygen = await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bb-test", "-f", identity], { expect: ANY_EXIT });
  assert.equal(keygen.code, 0, keygen.stderr);
  await chmod(identity, 0o600);
  await writeTree(join(dir, "bottles"), {
    "agents/gated.md": "---\nprovider: shell\nbottle: gated\n---\n",
    // Never fetched: git-gate dials an upstream at the agent's first fetch, and there is no agent.
    "gated.md": [
      "---",
      "git:",
      "  upstreams:",
      "    git.invalid:",
      "      url: ssh://git@git.invalid",
      `      identity_file: ${identity}`,
      '      host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"',
      "  repos: [git.invalid/team/app]",
      "supervise: true",
      "---",
      "",
    ].join("\n"),
  });
  const prepared = await runTool("bb-prepare", ["gated", "--manifest-dir", join(dir, "bottles"), "--state-dir", state, "-q"]);
  assert.equal(prepared.code, 0, prepared.stderr);
  const slug = (prepared.json() as { slug: string }).slug;
  t.after(() => runTool("bb-cleanup", ["--slug", slug, "--yes", "-q", "--state-dir", state]));
  const bundled = await runTool("bb-bundle", [], { input: prepared.stdout, env: { BB_TEST_LABEL: "1" } });
  assert.equal(bundled.code, 0, bundled.stderr);
  const container = `bb-${slug}-bundle`;

  // Each daemon's uid and gid, as init started it.
  const ps = await run(["docker", "exec", container, "sh", "-c", 'for p in /proc/[0-9]*; do echo "$(awk \'/^Uid:/{u=$2} /^Gid:/{g=$2} END{print u":"g}\' $p/status) $(tr "\\0" " " < $p/cmdline)"; done'], { expect: ANY_EXIT });
  const ids: Record<string, string> = {};
  for (const line of ps.stdout.split("\n")) {
    const m = /^(\d+:\d+) node \/opt\/bb\/sidecar\/(firewall|git-gate|supervise)\.js /.exec(line);
    if (m) ids[m[2]!] = m[1]!;
  }
  assert.deepEqual(Object.keys(ids).sort(), ["firewall", "git-gate", "supervise"], ps.stdout);

  /** Run `argv` in the bundle as a daemon does: its uid and gid, no groups, no capabilities. */
  const as = async (daemon: string, argv: string[]) => {
    const [uid, gid] = ids[daemon]!.split(":");
    const setpriv = ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"];
    return (await run(["docker", "exec", container, ...setpriv, ...argv], { expect: ANY_EXIT })).code === 0;
  };
  const readers = async (file: string) => {
    const can: string[] = [];
    for (const d of Object.keys(ids).sort()) if (await as(d, ["cat", file])) can.push(d);
    return can;
  };
  assert.deepEqual(await readers("/bb/identities/identity-0"), ["git-gate"]);
  assert.deepEqual(await readers("/bb/ca/ca-key.pem"), ["firewall"]);
  assert.deepEqual(await readers("/bb/ca/ca.pem"), ["firewall", "git-gate", "supervise"]);
  // And ssh takes the key as git-gate's own: no "UNPROTECTED PRIVATE KEY FILE".
  assert.ok(await as("git-gate", ["ssh-keygen", "-y", "-f", "/bb/identities/identity-0"]), "git-gate's ssh refuses its identity");
});
