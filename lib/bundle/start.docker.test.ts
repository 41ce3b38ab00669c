// bb-bundle against a real Docker engine: what each daemon in the started bundle may read,
// checked under the uid and gid the bundle's init gave it (read from the bundle's /proc),
// two runs starting one bottle at once, and what a flood of refusals leaves in the bundle's
// log (the first ones and counts, never rotated away) and in the firewall's record.
import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { chmod, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test, type TestContext } from "node:test";
import { blockedRecordPath, BLOCKED_DIR, BLOCKED_LIMITS, type BlockedRecord } from "../blocked-record.ts";
import { daemonIdMap } from "../layout.ts";
import { ANY_EXIT, run, which } from "../proc.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { tempDir, writeTree } from "../../tests/support/tmp.ts";
import { runTool } from "../../tests/support/tools.ts";

/** bb-prepare ARGS into `state` (-q), the bottle removed with bb-cleanup after the test. */
async function prepare(t: TestContext, state: string, args: string[]): Promise<{ slug: string; plan: string }> {
  const prepared = await runTool("bb-prepare", [...args, "--state-dir", state, "-q"]);
  assert.equal(prepared.code, 0, prepared.stderr);
  const slug = (prepared.json() as { slug: string }).slug;
  t.after(() => runTool("bb-cleanup", ["--slug", slug, "--yes", "-q", "--state-dir", state]));
  return { slug, plan: prepared.stdout };
}

/** Run `argv` in the bundle as a daemon does: its uid and gid ("uid:gid"), no groups, no
 * capabilities; whether it succeeded. */
async function asDaemon(container: string, id: string, argv: string[]): Promise<boolean> {
  const [uid, gid] = id.split(":");
  const setpriv = ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"];
  return (await run(["docker", "exec", container, ...setpriv, ...argv], { expect: ANY_EXIT })).code === 0;
}

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
  const { slug, plan } = await prepare(t, state, ["gated", "--manifest-dir", join(dir, "bottles")]);
  const bundled = await runTool("bb-bundle", [], { input: plan, env: { BB_TEST_LABEL: "1" } });
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

  const as = (daemon: string, argv: string[]) => asDaemon(container, ids[daemon]!, argv);
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
  const { slug, plan } = await prepare(t, state, ["shell"]);
  const bundle = () => runTool("bb-bundle", ["--no-wait"], { input: plan, env: { BB_TEST_LABEL: "1" } });
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

// Run in the bundle (node is there): refused plain-HTTP requests to the firewall on the
// bundle's loopback, pipelined a batch at a time on a few keep-alive connections. Each
// host is distinct and as long as DNS allows, so each refusal is a long log line.
const FLOOD = String.raw`
const net = require("node:net");
const [total, conns, offset] = [Number(process.argv[2]), 8, Number(process.argv[3] ?? 0)];
const host = (i) => "a".repeat(63) + "." + "b".repeat(63) + "." + "c".repeat(63) + "." + "d".repeat(40) + "-" + i + ".flood.test";
const one = (from, to) => new Promise((resolve, reject) => {
  const s = net.connect(8888, "127.0.0.1");
  let next = from, seen = 0, tail = "";
  const batch = () => {
    let out = "";
    for (let n = 0; n < 200 && next < to; n++, next++) out += "GET http://" + host(offset + next) + "/ HTTP/1.1\r\nHost: " + host(offset + next) + "\r\n\r\n";
    s.write(out);
  };
  s.on("data", (c) => {
    const text = tail + c.toString("latin1");
    seen += text.split("HTTP/1.1 403 ").length - 1;
    tail = text.slice(-12); // shorter than the marker: never counted twice
    if (seen === to - from) return s.end(resolve);
    if (seen === next - from) batch();
  });
  s.on("error", reject);
  batch();
});
const per = Math.ceil(total / conns);
Promise.all([...Array(conns).keys()].map((k) => one(k * per, Math.min(total, (k + 1) * per)))).then(() => console.log("done"), (e) => { console.error(e); process.exit(1); });
`;

test("a flood of refusals leaves the first ones and counts of the rest in the bundle's log, which stays small, and the first keys in the firewall's record, which only the firewall can write and bb-supervise blocked shows", skipWhen(noDocker, "a real bundle"), async (t) => {
  const state = await tempDir(t);
  const { slug, plan } = await prepare(t, state, ["shell"]);
  const bundled = await runTool("bb-bundle", [], { input: plan, env: { BB_TEST_LABEL: "1" } });
  assert.equal(bundled.code, 0, bundled.stderr);
  const container = `bb-${slug}-bundle`;
  const inBundle = (argv: string[], input?: string) => run(["docker", "exec", ...(input === undefined ? [] : ["-i"]), container, ...argv], { expect: ANY_EXIT, input, timeoutMs: 300_000 });

  // The first attempt, then a flood of long refusals that took about 40 MiB of log when each
  // had its line, rotating (10 MiB x 3) the first one out of it.
  const first = await inBundle(["node", "-e", `require("node:http").get({ host: "127.0.0.1", port: 8888, path: "http://first.exfil.test/", headers: { host: "first.exfil.test" } }, (r) => console.log(r.statusCode))`]);
  assert.equal(first.stdout.trim(), "403", first.stderr);
  const logged = async () => (await run(["docker", "logs", container], { expect: ANY_EXIT, timeoutMs: 120_000 })).stderr;
  const total = 120_000;
  const flood = await inBundle(["node", "-", String(total)], FLOOD);
  assert.equal(flood.stdout.trim(), "done", flood.stderr);
  // The counts are said within a window (10 s) of the last refusal.
  let logs = await logged();
  for (const deadline = Date.now() + 30_000; !/blocked \d+ more refusals/.test(logs) && Date.now() < deadline; logs = await logged()) await new Promise((r) => setTimeout(r, 500));
  assert.match(logs, /blocked GET first\.exfil\.test: host is not in this bottle's allowlist/);
  assert.match(logs, /-0\.flood\.test: host is not in this bottle's allowlist/);
  assert.doesNotMatch(logs, /left out/);
  assert.ok(logs.length < 1024 * 1024, `the flood wrote ${logs.length} bytes of log`);
  const lines = logs.split("\n");
  const one = lines.filter((l) => /blocked GET a{63}\..*\.flood\.test: host is not/.test(l)).length;
  const counted = lines.map((l) => /blocked (\d+) more refusals? in the last \d+ s, not logged one by one \((\d+) to hosts or ports not allowed\)/.exec(l)?.[2]).filter(Boolean).reduce((a, n) => a + Number(n), 0);
  assert.equal(one + counted, total, lines.filter((l) => /more refusals/.test(l)).join("\n"));

  const path = blockedRecordPath(join(state, "bottles", slug));
  const others = total - (BLOCKED_LIMITS.gate - 1);
  let record: BlockedRecord | null = null;
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
    const r = await runTool("bb-supervise", ["--slug", slug, "--state-dir", state, "blocked", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    record = JSON.parse(r.stdout) as BlockedRecord;
    if (record.others.count === others) break;
  }
  assert.equal(record!.entries.length, BLOCKED_LIMITS.gate);
  assert.deepEqual([record!.entries[0]!.host, record!.entries[0]!.rule, record!.entries[0]!.count], ["first.exfil.test", "not allowed", 1]);
  assert.match(record!.entries[1]!.host, /-0\.flood\.test$/);
  assert.equal(record!.others.count, others);
  assert.ok((await stat(path)).size < 512 * 1024);
  const table = await runTool("bb-supervise", ["--slug", slug, "--state-dir", state, "blocked"]);
  assert.match(table.stdout.split("\n")[1]!, /^first\.exfil\.test\s+not allowed\s+1\s/);
  assert.match(table.stderr, new RegExp(`${others} more refusals .* are counted but not listed`));

  // Who may write the folder, as each daemon's uid (the bundle runs only the firewall here).
  const host = { uid: process.getuid!(), gid: process.getgid!() };
  const ids = daemonIdMap(host);
  const writers: string[] = [];
  for (const [name, id] of Object.entries(ids)) if (await asDaemon(container, `${id.uid}:${id.gid}`, ["touch", `/bb/firewall-blocked/by-${name}`])) writers.push(name);
  const dir = await stat(join(state, "bottles", slug, BLOCKED_DIR));
  if (host.uid === 0) {
    assert.deepEqual(writers, ["firewall"]);
    assert.deepEqual([dir.uid, dir.mode & 0o7777], [ids.firewall.uid, 0o700]);
  } else {
    // Your group's, as the supervise queue is; sticky, so none may replace the firewall's file.
    assert.deepEqual([dir.uid, dir.mode & 0o7777], [host.uid, 0o1770]);
    assert.equal(await asDaemon(container, `${ids.supervise.uid}:${ids.supervise.gid}`, ["rm", "-f", "/bb/firewall-blocked/blocked.json"]), false);
  }
  const file = await stat(path);
  assert.deepEqual([file.uid, file.mode & 0o777], [ids.firewall.uid, 0o640]);
});
