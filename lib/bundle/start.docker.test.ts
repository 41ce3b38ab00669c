// bb-bundle against a real Docker engine: what each daemon in the started bundle may read,
// checked under the uid and gid the bundle's init gave it (read from the bundle's /proc),
// and two runs starting one bottle at once.
import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { chmod, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { ANY_EXIT, run, which } from "../proc.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { tempDir, writeTree } from "../../tests/support/tmp.ts";
import { runTool } from "../../tests/support/tools.ts";

const notRoot = process.getuid?.() !== 0 && "bb-bundle runs as you: git-gate reads your own 0600 key file and the CA key is your group's, as the daemons' is";
const noDocker = !(await which("docker")) && "no docker CLI on PATH";

test("run as root, the SSH identity and the data folder are git-gate's alone and the CA key the firewall's: supervise and the firewall, which the agent talks to, read neither, nor write there", skipWhen(notRoot || noDocker, "bundle file modes as root"), async (t) => {
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
  // git-gate's data folder is its own: a daemon that could write there could plant a
  // declared repo's mirror, whose config git-gate would run at the agent's next fetch.
  const writers: string[] = [];
  for (const d of Object.keys(ids).sort()) if (await as(d, ["mkdir", `/var/lib/bb/git-gate/by-${d}`])) writers.push(d);
  assert.deepEqual(writers, ["git-gate"]);
  // And ssh takes the key as git-gate's own: no "UNPROTECTED PRIVATE KEY FILE".
  assert.ok(await as("git-gate", ["ssh-keygen", "-y", "-f", "/bb/identities/identity-0"]), "git-gate's ssh refuses its identity");
});

test("two bb-bundle runs of one new bottle at once leave it one CA, whole, its key matching, in the bundle if one started: neither removes what the other uses", skipWhen(noDocker, "two bb-bundle runs at once"), async (t) => {
  const state = await tempDir(t);
  const prepared = await runTool("bb-prepare", ["shell", "--state-dir", state, "-q"]);
  assert.equal(prepared.code, 0, prepared.stderr);
  const slug = (prepared.json() as { slug: string }).slug;
  t.after(() => runTool("bb-cleanup", ["--slug", slug, "--yes", "-q", "--state-dir", state]));
  const bundle = () => runTool("bb-bundle", ["--no-wait"], { input: prepared.stdout, env: { BB_TEST_LABEL: "1" } });
  // Which of them starts the bundle is the engine's call (some engines let both make the
  // networks, and then neither may start it); the CA must come out whole either way.
  const runs = await Promise.all([bundle(), bundle()]);
  const stderr = runs.map((r) => r.stderr).join("\n---\n");
  assert.ok(runs.some((r) => r.code !== 0), stderr);

  const ca = join(state, "bottles", slug, "ca");
  const cert = await readFile(join(ca, "ca.pem"), "utf8").catch(() => assert.fail(`the bottle's CA is gone:\n${stderr}`));
  assert.ok(new X509Certificate(cert).checkPrivateKey(createPrivateKey(await readFile(join(ca, "ca-key.pem"), "utf8"))), "the CA's key is not its certificate's");
  assert.deepEqual((await readdir(join(state, "bottles", slug))).filter((n) => n.startsWith(".ca-")), [], "a staged CA was left behind");
  if (runs.some((r) => r.code === 0)) {
    const inBundle = await run(["docker", "exec", `bb-${slug}-bundle`, "cat", "/bb/ca/ca.pem"], { expect: ANY_EXIT });
    assert.equal(inBundle.stdout, cert, inBundle.stderr);
  }
});
