// bb-bundle against a real Docker engine: what each daemon in the started bundle may read,
// checked under the uid and gid the bundle's init gave it (read from the bundle's /proc),
// two runs starting one bottle at once, and what a flood of refusals leaves in the bundle's
// log (the first ones and counts, never rotated away) and in the firewall's record.
import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { chmod, chown, mkdir, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test, type TestContext } from "node:test";
import { blockedRecordPath, BLOCKED_DIR, BLOCKED_LIMITS, type BlockedRecord } from "../blocked-record.ts";
import { daemonIdMap } from "../layout.ts";
import { ANY_EXIT, run, which } from "../proc.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { tempDir, writeTree } from "../../tests/support/tmp.ts";
import { REPO, runTool } from "../../tests/support/tools.ts";

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

/**
 * Which daemons can get at the bottle CA's key, each trying as its own uid: a key file
 * anywhere under /bb, or the BB_CA_KEY in any daemon's environment (the firewall's, where
 * init puts it). Whether it can is decided by the kernel (its /proc/PID/environ is its
 * own uid's), not by this test.
 */
async function caKeyHolders(container: string, ids: Record<string, string>): Promise<string[]> {
  const pids = await run(["docker", "exec", container, "sh", "-c", "for p in /proc/[0-9]*; do echo ${p#/proc/}; done"], { expect: ANY_EXIT });
  const look = `for p in ${pids.stdout.split("\n").filter(Boolean).join(" ")}; do tr "\\0" "\\n" < /proc/$p/environ 2>/dev/null; done | grep -q "^BB_CA_KEY=-----BEGIN" || grep -rqs -- "PRIVATE KEY-----" /bb/ca /bb/firewall /bb/supervise /bb/git-gate /bb/firewall-blocked`;
  const holders: string[] = [];
  for (const d of Object.keys(ids).sort()) if (await asDaemon(container, ids[d]!, ["sh", "-c", look])) holders.push(d);
  return holders;
}

/** Each daemon's uid and gid ("uid:gid"), as init started it, read from the bundle's /proc. */
async function daemonIds(container: string): Promise<Record<string, string>> {
  const ps = await run(["docker", "exec", container, "sh", "-c", 'for p in /proc/[0-9]*; do echo "$(awk \'/^Uid:/{u=$2} /^Gid:/{g=$2} END{print u":"g}\' $p/status) $(tr "\\0" " " < $p/cmdline)"; done'], { expect: ANY_EXIT });
  const ids: Record<string, string> = {};
  for (const line of ps.stdout.split("\n")) {
    const m = /^(\d+:\d+) node \/opt\/bb\/sidecar\/(firewall|git-gate|supervise)\.js /.exec(line);
    if (m) ids[m[2]!] = m[1]!;
  }
  return ids;
}

// Run in the bundle: a CONNECT through the firewall to an allowed host and a TLS handshake
// inside it, which the firewall answers with a leaf it mints with the bottle CA's key (no
// request follows, so nothing dials out). Prints the leaf's issuer once it verifies
// against the bottle's certificate.
const MINT = String.raw`
const net = require("node:net"), tls = require("node:tls"), fs = require("node:fs");
const s = net.connect(8888, "127.0.0.1", () => s.write("CONNECT mint.test:443 HTTP/1.1\r\nHost: mint.test:443\r\n\r\n"));
s.once("data", (d) => {
  if (!/^HTTP\/1\.1 200/.test(d.toString())) { console.error(d.toString()); process.exit(1); }
  const t = tls.connect({ socket: s, servername: "mint.test", ca: fs.readFileSync("/bb/ca/ca.pem") }, () => {
    console.log(t.getPeerCertificate().issuer.CN);
    t.destroy();
  });
  t.on("error", (e) => { console.error(e.message); process.exit(1); });
});
`;

/** The issuer of the leaf the bundle's firewall mints for an intercepted tunnel (MINT). */
async function mintedBy(container: string): Promise<string> {
  const minted = await run(["docker", "exec", container, "node", "-e", MINT], { expect: ANY_EXIT });
  assert.equal(minted.code, 0, `the intercepted handshake failed: ${minted.stderr}`);
  return minted.stdout.trim();
}

/** A 0600 SSH identity at `identity`, and in `bottles` the agent "gated" of a bottle with
 * git-gate, supervise and mint.test allowed. */
async function gatedBottle(bottles: string, identity: string): Promise<void> {
  const keygen = await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bb-test", "-f", identity], { expect: ANY_EXIT });
  assert.equal(keygen.code, 0, keygen.stderr);
  await chmod(identity, 0o600);
  await writeTree(bottles, {
    "agents/gated.md": "---\nprovider: shell\nbottle: gated\n---\n",
    // Never fetched: git-gate dials an upstream at the agent's first fetch, and there is no agent.
    "gated.md": [
      "---",
      "allow_hosts: [mint.test]",
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
}

const notRoot = process.getuid?.() !== 0 && "bb-bundle runs as you: git-gate reads your own 0600 key file";
const noDocker = !(await which("docker")) && "no docker CLI on PATH";

test("run as root, the SSH identity and the data folder are git-gate's alone and the CA key the firewall's: supervise and the firewall, which the agent talks to, read neither, nor write there", skipWhen(notRoot || noDocker, "bundle file modes as root"), async (t) => {
  const dir = await tempDir(t);
  const state = join(dir, "state");
  await gatedBottle(join(dir, "bottles"), join(dir, "id_ed25519"));
  const { slug, plan } = await prepare(t, state, ["gated", "--manifest-dir", join(dir, "bottles")]);
  const bundled = await runTool("bb-bundle", [], { input: plan, env: { BB_TEST_LABEL: "1" } });
  assert.equal(bundled.code, 0, bundled.stderr);
  const container = `bb-${slug}-bundle`;

  const ids = await daemonIds(container);
  assert.deepEqual(Object.keys(ids).sort(), ["firewall", "git-gate", "supervise"], JSON.stringify(ids));

  const as = (daemon: string, argv: string[]) => asDaemon(container, ids[daemon]!, argv);
  const readers = async (file: string) => {
    const can: string[] = [];
    for (const d of Object.keys(ids).sort()) if (await as(d, ["cat", file])) can.push(d);
    return can;
  };
  assert.deepEqual(await readers("/bb/identities/identity-0"), ["git-gate"]);
  assert.deepEqual(await caKeyHolders(container, ids), ["firewall"]);
  assert.equal(await mintedBy(container), `bot-bottle ${slug} CA`);
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
  // Every refusal is logged or counted: the counts are said within a window (10 s) of the
  // last refusal. A flood that outlasts a window (a loaded machine) is counted in a line per
  // window, so the wait is for all of them, not the first.
  const tally = (text: string) => {
    const lines = text.split("\n");
    const one = lines.filter((l) => /blocked GET a{63}\..*\.flood\.test: host is not/.test(l)).length;
    const counted = lines.map((l) => /blocked (\d+) more refusals? in the last \d+ s, not logged one by one \((\d+) to hosts or ports not allowed\)/.exec(l)?.[2]).filter(Boolean).reduce((a, n) => a + Number(n), 0);
    return one + counted;
  };
  let logs = await logged();
  for (const deadline = Date.now() + 30_000; tally(logs) < total && Date.now() < deadline; logs = await logged()) await new Promise((r) => setTimeout(r, 500));
  assert.match(logs, /blocked GET first\.exfil\.test: host is not in this bottle's allowlist/);
  assert.match(logs, /-0\.flood\.test: host is not in this bottle's allowlist/);
  assert.doesNotMatch(logs, /left out/);
  assert.ok(logs.length < 1024 * 1024, `the flood wrote ${logs.length} bytes of log`);
  assert.equal(tally(logs), total, logs.split("\n").filter((l) => /more refusals/.test(l)).join("\n"));

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

const cannotSwitchUser = process.getuid?.() !== 0 && "running the tools as a throwaway non-root uid needs root (setpriv)";
/** The engine's socket, which the throwaway user reaches through its group. */
const socket = await stat("/var/run/docker.sock").catch(() => null);
const noSocket = !socket && "no engine socket at /var/run/docker.sock for the non-root user";

test("run as a non-root user, the CA key reaches the firewall alone, which still mints intercepted leaves with it (supervise and git-gate, which share your group, cannot read it), and the firewall's record of refusals is its own from the start, never one supervise made", skipWhen(cannotSwitchUser || noDocker || noSocket, "bundle as a non-root user"), async (t) => {
  // A uid of no one's, in the engine socket's group: bb-prepare and bb-bundle run as a
  // user in the docker group does.
  const uid = 47000 + (process.pid % 1000);
  const dir = await tempDir(t);
  await chmod(dir, 0o755);
  const home = join(dir, "home");
  await mkdir(home, { mode: 0o700 });
  await chown(home, uid, uid);
  const identity = join(home, "id_ed25519");
  await gatedBottle(join(dir, "bottles"), identity);
  await chown(identity, uid, uid);
  await chmod(join(dir, "bottles"), 0o755);
  const state = join(home, "state");
  const asUser = (tool: string, args: string[], input?: string) =>
    run(["setpriv", `--reuid=${uid}`, `--regid=${uid}`, `--groups=${socket!.gid}`, "--", join(REPO, "bin", tool), ...args], {
      expect: ANY_EXIT,
      input,
      env: { HOME: home, XDG_CACHE_HOME: join(home, ".cache"), BB_FROM_SOURCE: "1", NO_COLOR: "1", BB_TEST_LABEL: "1" },
      timeoutMs: 180_000,
    });
  const prepared = await asUser("bb-prepare", ["gated", "--manifest-dir", join(dir, "bottles"), "--state-dir", state, "-q"]);
  assert.equal(prepared.code, 0, prepared.stderr);
  const slug = (JSON.parse(prepared.stdout) as { slug: string }).slug;
  t.after(() => asUser("bb-cleanup", ["--slug", slug, "--yes", "-q", "--state-dir", state]));
  const bundled = await asUser("bb-bundle", [], prepared.stdout);
  assert.equal(bundled.code, 0, bundled.stderr);
  const container = `bb-${slug}-bundle`;

  const ids = await daemonIds(container);
  assert.deepEqual(ids, Object.fromEntries(Object.entries(daemonIdMap({ uid, gid: uid })).filter(([d]) => d !== "egress").map(([d, id]) => [d, `${id.uid}:${id.gid}`])));
  assert.deepEqual(await caKeyHolders(container, ids), ["firewall"]);
  // Yours on the host, and yours alone.
  const key = await stat(join(state, "bottles", slug, "ca", "ca-key.pem"));
  assert.deepEqual([key.uid, key.mode & 0o777], [uid, 0o600]);
  assert.equal(await mintedBy(container), `bot-bottle ${slug} CA`);

  // The refusal folder is your group's here (bb-bundle cannot chown it), but the firewall
  // made its record before it listened, empty: supervise can neither make it first nor
  // replace it (sticky).
  const record = await stat(blockedRecordPath(join(state, "bottles", slug)));
  assert.deepEqual([record.uid, record.mode & 0o777], [Number(ids.firewall!.split(":")[0]), 0o640]);
  assert.equal(await asDaemon(container, ids.supervise!, ["sh", "-c", "echo planted > /bb/firewall-blocked/.p && mv -f /bb/firewall-blocked/.p /bb/firewall-blocked/blocked.json"]), false, "supervise replaced the firewall's record");
  const shown = await asUser("bb-supervise", ["--slug", slug, "--state-dir", state, "blocked", "--json"]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.deepEqual((JSON.parse(shown.stdout) as BlockedRecord).entries, []);
});
