// bb-bundle against a real Docker engine: what each daemon in the started bundle may read,
// checked under the uid and gid the bundle's init gave it (read from the bundle's /proc),
// two runs starting one bottle at once, and what a flood of refusals leaves in the bundle's
// log (the first ones and counts, never rotated away) and in the firewall's record.
import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, chown, mkdir, readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { test, type TestContext } from "node:test";
import { blockedRecordPath, BLOCKED_DIR, BLOCKED_LIMITS, type BlockedRecord } from "../blocked-record.ts";
import { daemonIdMap } from "../layout.ts";
import { ANY_EXIT, run, which } from "../proc.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { tempDir, writeTree } from "../../tests/support/tmp.ts";
import { cannotRunSshd, keypair, startSshd } from "../../tests/support/sshd.ts";
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
 * Which daemons can get at a secret, each trying as its own uid: `variable` in any
 * daemon's environment (where init puts it), or a file under `dirs` holding `marker`.
 * Whether it can is decided by the kernel (a /proc/PID/environ is its own uid's), not by
 * this test.
 */
async function holders(container: string, ids: Record<string, string>, variable: string, marker: string, dirs: string[]): Promise<string[]> {
  const pids = await run(["docker", "exec", container, "sh", "-c", "for p in /proc/[0-9]*; do echo ${p#/proc/}; done"], { expect: ANY_EXIT });
  const look = `for p in ${pids.stdout.split("\n").filter(Boolean).join(" ")}; do tr "\\0" "\\n" < /proc/$p/environ 2>/dev/null; done | grep -q "^${variable}=-----BEGIN" || grep -rqs -- "${marker}" ${dirs.join(" ")}`;
  const can: string[] = [];
  for (const d of Object.keys(ids).sort()) if (await asDaemon(container, ids[d]!, ["sh", "-c", look])) can.push(d);
  return can;
}

/** Who can get at the bottle CA's key: BB_CA_KEY, or a key file anywhere under /bb. */
const caKeyHolders = (container: string, ids: Record<string, string>) =>
  holders(container, ids, "BB_CA_KEY", "PRIVATE KEY-----", ["/bb/ca", "/bb/firewall", "/bb/supervise", "/bb/git-gate", "/bb/firewall-blocked"]);

/** Who can get at the upstream's SSH key: BB_GIT_IDENTITY_0, or the file git-gate writes it
 * to (on the bundle's /dev/shm), or one anywhere under /bb or git-gate's volume. */
const identityHolders = (container: string, ids: Record<string, string>) =>
  holders(container, ids, "BB_GIT_IDENTITY_0", "OPENSSH PRIVATE KEY", ["/dev/shm", "/bb", "/var/lib/bb"]);

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

/** The upstream the agent never fetches from: git-gate dials an upstream at the agent's
 * first fetch, and there is no agent. */
const NEVER_FETCHED = { url: "ssh://git@git.invalid", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl" };

/** A 0600 SSH identity at `identity` (made unless there is one), and in `bottles` the agent "gated" of a bottle with
 * git-gate (git.invalid/team/app from `upstream`, pushes to bot/*), supervise and
 * mint.test allowed. */
async function gatedBottle(bottles: string, identity: string, upstream = NEVER_FETCHED): Promise<void> {
  if (!existsSync(identity)) await keypair(dirname(identity), basename(identity));
  await chmod(identity, 0o600);
  await writeTree(bottles, {
    "agents/gated.md": "---\nprovider: shell\nbottle: gated\n---\n",
    "gated.md": [
      "---",
      "allow_hosts: [mint.test]",
      "git:",
      "  upstreams:",
      "    git.invalid:",
      `      url: ${upstream.url}`,
      `      identity_file: ${identity}`,
      `      host_key: "${upstream.hostKey}"`,
      "  repos: [git.invalid/team/app]",
      '  push: {allowed_refs: ["refs/heads/bot/*"]}',
      "supervise: true",
      "---",
      "",
    ].join("\n"),
  });
}

const notRoot = process.getuid?.() !== 0 && "the tools run as root here (the non-root test below runs them as a user)";
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
  assert.deepEqual(await identityHolders(container, ids), ["git-gate"]);
  assert.deepEqual(await caKeyHolders(container, ids), ["firewall"]);
  assert.equal(await mintedBy(container), `bot-bottle ${slug} CA`);
  assert.deepEqual(await readers("/bb/ca/ca.pem"), ["firewall", "git-gate", "supervise"]);
  await assertGitGateStore(container, ids);
  // And ssh takes the key as git-gate's own: no "UNPROTECTED PRIVATE KEY FILE".
  assert.ok(await as("git-gate", ["sh", "-c", "ssh-keygen -y -f /dev/shm/git-gate-identities-*/identity-0"]), "git-gate's ssh refuses its identity");
  await assertQueueTrust(container, ids, () => runTool("bb-supervise", ["--slug", slug, "--state-dir", state, "list", "--json"]));
});

/** Any daemon can make a new file in supervise's queue (sticky stops replacing, not
 * making): a "request" the firewall or git-gate, which the agent talks to, files there
 * under its own uid never reaches the operator's list; supervise's does. */
async function assertQueueTrust(container: string, ids: Record<string, string>, list: () => Promise<{ code: number; stdout: string; stderr: string }>): Promise<void> {
  for (const d of ["firewall", "git-gate", "supervise"]) {
    const request = {
      version: 1, id: `by-${d}`, kind: "host", host: `${d}.example.org`, tlsPassthrough: false, reason: "r", question: null,
      status: "pending", answer: null, createdAt: "2026-02-02T02:02:02.000Z", decidedAt: null,
    };
    assert.ok(await asDaemon(container, ids[d]!, ["sh", "-c", `umask 027; printf '%s' '${JSON.stringify(request)}' > /bb/supervise/queue/by-${d}.json`]), `${d} cannot make a file in the queue`);
  }
  const listed = await list();
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual((JSON.parse(listed.stdout) as { id: string }[]).map((r) => r.id), ["by-supervise"]);
  for (const d of ["firewall", "git-gate"]) {
    assert.match(listed.stderr, new RegExp(`left out supervise queue file \\S+/by-${d}\\.json: it belongs to uid ${ids[d]!.split(":")[0]}, neither supervise's`));
  }
}

/** git-gate's data folder in its volume is its own: a daemon that could write there could
 * plant a declared repo's mirror, whose config git-gate would run at the agent's next
 * fetch. Nor can any daemon make a folder beside it in the volume. */
async function assertGitGateStore(container: string, ids: Record<string, string>): Promise<void> {
  const writers = async (dir: string) => {
    const can: string[] = [];
    for (const d of Object.keys(ids).sort()) if (await asDaemon(container, ids[d]!, ["mkdir", `${dir}/by-${d}`])) can.push(d);
    return can;
  };
  assert.deepEqual(await writers("/var/lib/bb/git-gate-store/data"), ["git-gate"]);
  assert.deepEqual(await writers("/var/lib/bb/git-gate-store"), []);
}

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
/** The host's address on docker's default bridge: the bundle reaches the test's sshd there.
 * From `ip`: node lists no interface that is down, as docker0 is with no container on it. */
const DOCKER0 = /inet (\d+\.\d+\.\d+\.\d+)\//.exec((await run(["ip", "-4", "-o", "addr", "show", "docker0"], { expect: ANY_EXIT }).catch(() => null))?.stdout ?? "")?.[1];
const noDocker0 = !DOCKER0 && "no docker0 address on this machine for the bundle to reach the test's sshd at";

/** In the bundle as an agent would (a uid of no daemon's, on loopback): a git script in a home of its own. */
async function asAgent(container: string, script: string): Promise<{ code: number; out: string }> {
  const setpriv = ["setpriv", "--reuid=55555", "--regid=55555", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"];
  const sh = `set -e; export HOME=/tmp/agent GIT_CONFIG_NOSYSTEM=1; mkdir -p $HOME; cd $HOME; { ${script}; } 2>&1`;
  const r = await run(["docker", "exec", container, ...setpriv, "sh", "-c", sh], { expect: ANY_EXIT, timeoutMs: 120_000 });
  return { code: r.code, out: r.stdout + r.stderr };
}

test("run as a non-root user, git-gate runs under a uid of its own: it holds the SSH key alone (from its environment) and still clones, fetches and pushes over SSH with it, keeps its mirrors in the bottle's volume, and can neither remove the firewall's record nor replace, remove or write into what supervise's queue holds; the CA key reaches the firewall alone, and the firewall's record is its own from the start", skipWhen(cannotSwitchUser || noDocker || noSocket || noDocker0 || (await cannotRunSshd()), "bundle as a non-root user"), async (t) => {
  // A uid of no one's, in the engine socket's group: bb-prepare and bb-bundle run as a
  // user in the docker group does.
  const uid = 47000 + (process.pid % 1000);
  const dir = await tempDir(t);
  await chmod(dir, 0o755);
  const home = join(dir, "home");
  await mkdir(home, { mode: 0o700 });
  await chown(home, uid, uid);
  const identity = join(home, "id_ed25519");
  // The upstream: sshd (as root here) on the host's docker0 address, accepting only the
  // user's key, serving a repository with one commit.
  const upstream = join(dir, "upstream");
  await mkdir(join(upstream, "sshd"), { recursive: true });
  const gitEnv = { GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1", GIT_AUTHOR_NAME: "u", GIT_AUTHOR_EMAIL: "u@upstream.test", GIT_COMMITTER_NAME: "u", GIT_COMMITTER_EMAIL: "u@upstream.test" };
  const bare = join(upstream, "team", "app");
  const git = async (args: string[]) => (await run(["git", "--git-dir", bare, ...args], { env: gitEnv, input: "" })).stdout.trim();
  await run(["git", "init", "-q", "--bare", "-b", "main", bare], { env: gitEnv });
  const seed = await git(["commit-tree", "-m", "seed", await git(["mktree"])]);
  await git(["update-ref", "refs/heads/main", seed]);
  await keypair(home, "id_ed25519");
  const port = await startSshd(t, join(upstream, "sshd"), await readFile(`${identity}.pub`, "utf8"), DOCKER0!);
  const hostKey = (await readFile(join(upstream, "sshd", "host_key.pub"), "utf8")).trim().split(" ").slice(0, 2).join(" ");
  await gatedBottle(join(dir, "bottles"), identity, { url: `ssh://root@${DOCKER0}:${port}${upstream}`, hostKey });
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
  const mine = daemonIdMap({ uid, gid: uid });
  assert.deepEqual(ids, Object.fromEntries(Object.entries(mine).filter(([d]) => d !== "egress").map(([d, id]) => [d, `${id.uid}:${id.gid}`])));
  assert.notEqual(mine["git-gate"].uid, uid, "git-gate runs as you");
  assert.deepEqual(await caKeyHolders(container, ids), ["firewall"]);
  assert.deepEqual(await identityHolders(container, ids), ["git-gate"]);
  // Yours on the host, and yours alone.
  const key = await stat(join(state, "bottles", slug, "ca", "ca-key.pem"));
  assert.deepEqual([key.uid, key.mode & 0o777], [uid, 0o600]);
  assert.equal(await mintedBy(container), `bot-bottle ${slug} CA`);

  // The refusal folder is your group's here (bb-bundle cannot chown it), but the firewall
  // made its record before it listened, empty: supervise can neither make it first nor
  // replace it (sticky), and git-gate, no longer you, can neither remove nor replace it.
  const record = await stat(blockedRecordPath(join(state, "bottles", slug)));
  assert.deepEqual([record.uid, record.mode & 0o777], [Number(ids.firewall!.split(":")[0]), 0o640]);
  for (const d of ["supervise", "git-gate"]) {
    assert.equal(await asDaemon(container, ids[d]!, ["sh", "-c", "echo planted > /bb/firewall-blocked/.p && mv -f /bb/firewall-blocked/.p /bb/firewall-blocked/blocked.json"]), false, `${d} replaced the firewall's record`);
  }
  assert.equal(await asDaemon(container, ids["git-gate"]!, ["rm", "-f", "/bb/firewall-blocked/blocked.json"]), false, "git-gate removed the firewall's record");
  // In supervise's queue (your group's, sticky, as the refusal folder) git-gate can no
  // more replace or remove what supervise filed, or your decision, than the firewall can.
  const queue = "/bb/supervise/queue";
  assert.ok(await asDaemon(container, ids.supervise!, ["sh", "-c", `echo filed > ${queue}/req-1.json`]));
  assert.ok(await asDaemon(container, `${uid}:${uid}`, ["sh", "-c", `echo decided > ${queue}/req-2.json`]));
  for (const file of ["req-1.json", "req-2.json"]) {
    assert.equal(await asDaemon(container, ids["git-gate"]!, ["rm", "-f", `${queue}/${file}`]), false, `git-gate removed ${file} from supervise's queue`);
    assert.equal(await asDaemon(container, ids["git-gate"]!, ["sh", "-c", `echo planted > ${queue}/.p && mv -f ${queue}/.p ${queue}/${file}`]), false, `git-gate replaced ${file} in supervise's queue`);
    assert.equal(await asDaemon(container, ids["git-gate"]!, ["sh", "-c", `echo planted >> ${queue}/${file}`]), false, `git-gate wrote into ${file} in supervise's queue`);
  }
  await assertQueueTrust(container, ids, () => asUser("bb-supervise", ["--slug", slug, "--state-dir", state, "list", "--json"]));
  const shown = await asUser("bb-supervise", ["--slug", slug, "--state-dir", state, "blocked", "--json"]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.deepEqual((JSON.parse(shown.stdout) as BlockedRecord).entries, []);

  // Through the gate with the key it holds: clone, a push within policy, a fetch of what
  // the upstream got since.
  const cloned = await asAgent(container, "git clone -q git://127.0.0.1:9418/git.invalid/team/app app && git -C app log --format=%s");
  assert.deepEqual([cloned.code, cloned.out], [0, "seed\n"]);
  const pushed = await asAgent(container, "cd app && git -c user.name=bot -c user.email=bot@example.test commit -q --allow-empty -m from-the-bottle && git push -q origin HEAD:refs/heads/bot/x && git rev-parse HEAD");
  assert.equal(pushed.code, 0, pushed.out);
  assert.equal(await git(["rev-parse", "refs/heads/bot/x"]), pushed.out.trim().split("\n").at(-1));
  const later = await git(["commit-tree", "-m", "upstream change", "-p", seed, `${seed}^{tree}`]);
  await git(["update-ref", "refs/heads/main", later]);
  const fetched = await asAgent(container, "cd app && git fetch -q origin && git rev-parse origin/main");
  assert.deepEqual([fetched.code, fetched.out.trim()], [0, later]);
  await assertGitGateStore(container, ids);

  // The mirrors are in the bottle's volume, labelled as its own; a restart keeps them, and
  // bb-cleanup removes the volume with the bottle.
  const volume = `bb-${slug}-git-gate`;
  const labels = JSON.parse((await run(["docker", "volume", "inspect", "--format", "{{json .Labels}}", volume])).stdout) as Record<string, string>;
  assert.deepEqual([labels["bot-bottle.slug"], labels["bot-bottle.role"]], [slug, "volume-git-gate"]);
  const gone = await asUser("bb-cleanup", ["--slug", slug, "--keep-state", "--yes", "-q", "--state-dir", state]);
  assert.equal(gone.code, 0, gone.stderr);
  const again = await asUser("bb-bundle", [], prepared.stdout);
  assert.equal(again.code, 0, again.stderr);
  const mirror = await asDaemon(container, (await daemonIds(container))["git-gate"]!, ["git", "--git-dir", "/var/lib/bb/git-gate-store/data/repos/git.invalid/team/app.git", "rev-parse", "refs/heads/main"]);
  assert.ok(mirror, "the restarted bundle lost git-gate's mirror");
  const cleaned = await asUser("bb-cleanup", ["--slug", slug, "--yes", "-q", "--state-dir", state]);
  assert.equal(cleaned.code, 0, cleaned.stderr);
  const left = await run(["docker", "volume", "ls", "-q", "--filter", `name=^${volume}$`]);
  assert.equal(left.stdout.trim(), "", "bb-cleanup left git-gate's volume");
});
