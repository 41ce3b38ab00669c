// The escape suite's "internet": one container per test file, on its own labelled network,
// that answers as every outside host a test bottle knows (HTTPS with a leaf from the
// test's own CA, plain HTTP, a git daemon with team/app.git, and a DNS server) and records
// every connection, request and query it sees. A test attaches it to a bottle's egress
// network under the host names, so the bundle reaches it the way it would the real hosts.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as docker from "../../../lib/docker/index.ts";
import { ensureImage } from "../../../lib/images/mod.ts";
import { run } from "../../../lib/proc.ts";
import { mintCa, mintLeaf } from "../../../lib/tls/mod.ts";
import { ESCAPE_DIR, REPO, TEST_LABELS } from "./env.ts";

/** The tests' WebSocket codec, which the fake server imports from /fake-lib. */
const WS_CODEC = { source: join(REPO, "tests", "support", "ws-frame.mjs"), target: "/fake-lib/ws-frame.mjs", readOnly: true };

/** The names the fake answers to on a bottle's egress network. */
const FAKE_HOSTS = ["api.test", "allowed.test", "other.test", "passthrough.test", "git.test"] as const;

export type FakeEvent =
  | { at: number; kind: "tcp"; port: number; remote: string }
  | { at: number; kind: "dns"; name: string; remote: string }
  | { at: number; kind: "ws-open"; tls: boolean; host: string | null; path: string; headers: Record<string, string | string[]>; remote: string }
  | { at: number; kind: "ws"; opcode: number; payload: string }
  | {
      at: number;
      kind: "http";
      tls: boolean;
      sni: string | null;
      host: string | null;
      method: string;
      path: string;
      headers: Record<string, string | string[]>;
      body: string;
      remote: string;
    };

export interface FakeInternet {
  container: string;
  /** Its own network (the control containers' network too). */
  network: string;
  /** The test CA (PEM file) that signed the fake's leaf: bb-bundle --upstream-ca. */
  caFile: string;
  /** Attach to another network under FAKE_HOSTS; returns its address there. */
  attach(network: string): Promise<string>;
  /** Its address on a network it is attached to. */
  ipOn(network: string): Promise<string>;
  /** Everything recorded so far, oldest first. */
  events(): Promise<FakeEvent[]>;
  /** Refs of the upstream team/app.git ("refs/heads/main" -> sha). */
  refs(): Promise<Record<string, string>>;
  /** Run git in the upstream repo. */
  git(args: string[]): Promise<string>;
  /** Remove the container (first: bottles cannot drop their networks while it is on them). */
  removeContainer(): Promise<void>;
  /** Remove its network and temp files (after the bottles are gone). */
  removeRest(): Promise<void>;
}

export async function startFakeInternet(id: string): Promise<FakeInternet> {
  const tls = await mkdtemp(join(tmpdir(), "bb-escape-tls-"));
  const container = `bbx-${id}-fake`;
  const network = `bbx-${id}-net`;
  let created = false;
  const fake: FakeInternet = {
    container,
    network,
    caFile: join(tls, "ca.pem"),
    async attach(net) {
      await docker.connectNetwork({ network: net, container, aliases: [...FAKE_HOSTS] });
      return fake.ipOn(net);
    },
    async ipOn(net) {
      const info = await docker.inspectContainer(container);
      const ip = info?.networks[net]?.ipAddress;
      if (!ip) throw new Error(`${container} has no address on ${net}`);
      return ip;
    },
    async events() {
      const r = await docker.execIn(container, ["cat", "/var/log/fake/events.jsonl"]);
      return r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as FakeEvent);
    },
    async refs() {
      const out = await fake.git(["for-each-ref", "--format=%(refname) %(objectname)"]);
      return Object.fromEntries(out.split("\n").filter(Boolean).map((l) => l.split(" ") as [string, string]));
    },
    async git(args) {
      return (await docker.execIn(container, ["git", "--git-dir", "/srv/git/team/app.git", ...args])).stdout;
    },
    async removeContainer() {
      await docker.removeContainer(container);
    },
    async removeRest() {
      if (created) await docker.removeNetwork(network).catch(() => {});
      await rm(tls, { recursive: true, force: true });
    },
  };
  try {
    const ca = await mintCa({ commonName: `bot-bottle escape suite ${id}` });
    const leaf = await mintLeaf({ caCertPem: ca.certPem, caKeyPem: ca.keyPem, hosts: [...FAKE_HOSTS] });
    await writeFile(join(tls, "ca.pem"), ca.certPem);
    await writeFile(join(tls, "cert.pem"), leaf.certPem);
    await writeFile(join(tls, "key.pem"), leaf.keyPem, { mode: 0o644 });
    await docker.createNetwork({ name: network, labels: TEST_LABELS });
    created = true;
    // The sidecar image has node 18 and git, and is there whenever a bottle can start.
    const image = (await ensureImage("sidecar")).ref;
    await docker.runContainer({
      name: container,
      image,
      labels: TEST_LABELS,
      network,
      user: "0", // ports 53, 80 and 443
      mounts: [
        { source: join(ESCAPE_DIR, "testdata", "fake"), target: "/fake", readOnly: true },
        WS_CODEC,
        { source: tls, target: "/fake-tls", readOnly: true },
      ],
      entrypoint: "/fake/entry.sh",
    });
    await waitForLog(container, "fake-internet ready", 20_000);
    return fake;
  } catch (e) {
    await fake.removeContainer().catch(() => {});
    await fake.removeRest();
    throw e;
  }
}

async function waitForLog(container: string, line: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let logs = "";
  while (Date.now() < deadline) {
    const r = await run(["docker", "logs", container], { expect: [0, 1] });
    logs = r.stdout + r.stderr;
    if (logs.includes(line)) return;
    await sleep(100);
  }
  throw new Error(`${container} did not print "${line}" within ${timeoutMs / 1000}s:\n${logs}`);
}

export interface HostResolver {
  container: string;
  /** Names queried so far. */
  names(): Promise<string[]>;
  remove(): Promise<void>;
}

/**
 * The recording DNS server alone, in a container on the host's network namespace, bound to
 * `address:53`, one of this machine's own addresses (a docker bridge gateway): where a
 * query would land if a bottle's resolver could reach the host.
 */
export async function startHostResolver(id: string, address: string): Promise<HostResolver> {
  const container = `bbx-${id}-hostdns`;
  const image = (await ensureImage("sidecar")).ref;
  const resolver: HostResolver = {
    container,
    async names() {
      const r = await docker.execIn(container, ["cat", "/var/log/fake/events.jsonl"]);
      return r.stdout.split("\n").filter(Boolean).map((l) => (JSON.parse(l) as { name: string }).name);
    },
    remove: async () => void (await docker.removeContainer(container)),
  };
  try {
    await docker.runContainer({
      name: container,
      image,
      labels: TEST_LABELS,
      network: "host",
      user: "0",
      env: { FAKE_SERVE: "dns", FAKE_DNS_BIND: address },
      mounts: [{ source: join(ESCAPE_DIR, "testdata", "fake"), target: "/fake", readOnly: true }, WS_CODEC],
      entrypoint: "sh",
      cmd: ["-c", "mkdir -p /var/log/fake && : > /var/log/fake/events.jsonl && exec node /fake/server.mjs"],
    });
    await waitForLog(container, "fake-internet ready", 20_000);
    return resolver;
  } catch (e) {
    await resolver.remove().catch(() => {});
    throw e;
  }
}
