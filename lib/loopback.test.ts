import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { mkdir, rm, utimes, writeFile } from "node:fs/promises";
import process from "node:process";
import { join } from "node:path";
import { fifo, settled } from "../tests/support/fifo.ts";
import { listenOn } from "../tests/support/ports.ts";
import { tempDir } from "../tests/support/tmp.ts";
import { samplePlan } from "../tests/support/plans.ts";
import { writeOwner } from "./inventory/owner.ts";
import { LINUX_POOL, loopbackFor as pick, MAC_POOL, pickFromPool } from "./loopback.ts";
import type { OccupantSources } from "./loopback-occupants.ts";

/** Nothing else on the host: the state root's own records decide. */
const idle: OccupantSources = { listeners: async () => [], published: async () => [] };
const loopbackFor = (o: Parameters<typeof pick>[0]) => pick({ occupants: idle, ...o });

test("pickFromPool takes the first address no other bottle holds, and says so when all are taken", () => {
  assert.equal(pickFromPool(new Set(["127.0.0.16", "127.0.0.17"])), "127.0.0.18");
  assert.throws(() => pickFromPool(new Set(MAC_POOL)), /All 16 loopback addresses \(127\.0\.0\.16-127\.0\.0\.31\) are taken/);
});

test("on Linux each smolmachines bottle gets its own loopback address, never 127.0.0.1", async (t) => {
  const state = await tempDir(t);
  const other = { ...samplePlan(), slug: "other-1111" };
  const withBundle = {
    ...other,
    bundle: {
      container: "c", image: "i", networks: { internal: null, egress: "e" }, caCert: "/ca", hostPorts: { firewall: 1 },
      agentUrls: { proxy: "http://127.0.0.16:1", gitGate: null, supervise: null }, loopbackAddr: "127.0.0.16", startedAt: "t",
    },
  };
  await mkdir(join(state, "bottles", other.slug), { recursive: true });
  await writeFile(join(state, "bottles", other.slug, "plan.json"), JSON.stringify(withBundle));
  await mkdir(join(state, "bottles", "mine-2222"), { recursive: true });
  const addr = await loopbackFor({ platform: "linux", stateRoot: state, slug: "mine-2222" });
  assert.equal(addr, "127.0.0.17");
  assert.ok(LINUX_POOL.includes(addr));
  assert.ok(!LINUX_POOL.includes("127.0.0.1"));
  assert.equal(await loopbackFor({ platform: "linux", stateRoot: state, slug: other.slug }), "127.0.0.16", "a bottle keeps its own address on resume");
});

test("bottles starting at once each get their own address, reserved before their bundles start; a resumed one keeps its own", async (t) => {
  const state = await tempDir(t);
  const slugs = Array.from({ length: 8 }, (_, i) => `b${i}-aaaa`);
  for (const s of slugs) await mkdir(join(state, "bottles", s), { recursive: true });
  const addrs = await Promise.all(slugs.map((slug) => loopbackFor({ platform: "linux", stateRoot: state, slug })));
  assert.equal(new Set(addrs).size, slugs.length, `two bottles got one address: ${addrs.join(", ")}`);
  assert.equal(await loopbackFor({ platform: "linux", stateRoot: state, slug: slugs[5]! }), addrs[5]);
  assert.ok(!existsSync(join(state, "loopback.lock")), "the lock was left behind");
});

test("a lock left by a start that was killed (its holder gone) is cleared at once; a live holder's is waited for", async (t) => {
  const state = await tempDir(t);
  await mkdir(join(state, "bottles", "c0-aaaa"), { recursive: true });
  const dead = spawnSync("sh", ["-c", "echo $$"]).stdout.toString().trim();
  await mkdir(join(state, "loopback.lock"));
  await writeOwner(join(state, "loopback.lock"), Number(dead));
  assert.equal(await loopbackFor({ platform: "linux", stateRoot: state, slug: "c0-aaaa" }), "127.0.0.16");

  await mkdir(join(state, "loopback.lock"));
  await writeOwner(join(state, "loopback.lock"), process.pid);
  let done = false;
  const waiting = loopbackFor({ platform: "linux", stateRoot: state, slug: "c0-aaaa" }).then((a) => ((done = true), a));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(done, false, "a lock held by a live process was taken");
  await rm(join(state, "loopback.lock"), { recursive: true });
  assert.equal(await waiting, "127.0.0.16");

  // Over 30 s old, a lock is abandoned even when its pid is alive again (reused).
  await mkdir(join(state, "loopback.lock"));
  await writeOwner(join(state, "loopback.lock"), process.pid);
  const old = new Date(Date.now() - 60_000);
  await utimes(join(state, "loopback.lock"), old, old);
  assert.equal(await loopbackFor({ platform: "linux", stateRoot: state, slug: "c0-aaaa" }), "127.0.0.16");
});

test("an address something on this host is bound to is never picked: another state root's or user's bundle, a host service", async (t) => {
  const state = await tempDir(t);
  await mkdir(join(state, "bottles", "mine-3333"), { recursive: true });
  // A real listener on 127.0.0.16 (what another root's bundle publishes looks like this),
  // and docker publishing on 127.0.0.17 with no listener of its own (userland proxy off).
  await listenOn(t, "127.0.0.16");
  const published = async () => [{ addr: "127.0.0.17", port: 32769, container: "bb-other-4444-bundle" }];
  const addr = await pick({ platform: "linux", stateRoot: state, slug: "mine-3333", occupants: { published } });
  assert.notEqual(addr, "127.0.0.16", "picked an address another process listens on");
  assert.notEqual(addr, "127.0.0.17", "picked an address docker publishes another bottle's ports on");
  // A resumed bottle whose address someone took meanwhile moves to another.
  await writeFile(join(state, "bottles", "mine-3333", "loopback-addr"), "127.0.0.16\n");
  assert.notEqual(await pick({ platform: "linux", stateRoot: state, slug: "mine-3333", occupants: { published } }), "127.0.0.16");
});

test("a bottle whose address reservation or plan.json is a FIFO holds no address and does not hold up another bottle's start (Ctrl-C and all)", async (t) => {
  const state = await tempDir(t);
  for (const [slug, name] of [["piped-1111", "loopback-addr"], ["piped-2222", "plan.json"]] as const) {
    await mkdir(join(state, "bottles", slug), { recursive: true });
    await fifo(t, join(state, "bottles", slug, name));
  }
  await mkdir(join(state, "bottles", "mine-3333"), { recursive: true });
  const addr = await settled("the pick done with the FIFOs", loopbackFor({ platform: "linux", stateRoot: state, slug: "mine-3333" }));
  assert.equal(addr, "127.0.0.16");
});
