import assert from "node:assert/strict";
import { test } from "node:test";
import { runArgs } from "./container.ts";

test("runArgs() passes env values by name only, keeping secrets out of argv", () => {
  const { args, childEnv } = runArgs({
    name: "bb-x",
    image: "img",
    labels: { "bot-bottle": "1" },
    env: { EGRESS_TOKEN_0: "sk-secret-value", HTTPS_PROXY: "http://firewall:8888" },
  });
  assert.ok(!args.some((a) => a.includes("sk-secret-value")), args.join(" "));
  assert.deepEqual(childEnv, { EGRESS_TOKEN_0: "sk-secret-value" });
  // The docker CLI reads HTTPS_PROXY itself, so it travels by value (it holds no secret).
  assert.ok(args.includes("HTTPS_PROXY=http://firewall:8888"));
  assert.ok(args.includes("EGRESS_TOKEN_0"));
});

test("runArgs() builds a detached, labelled run with networks, mounts, loopback publishing and the command last", () => {
  const { args } = runArgs({
    name: "bb-r-1-bundle",
    image: "bot-bottle/sidecar:abc",
    labels: { "bot-bottle": "1", "bot-bottle.role": "bundle" },
    network: "bb-r-1-int",
    aliases: ["firewall", "git-gate"],
    mounts: [{ source: "/s/dir,x", target: "/etc/bb", readOnly: true }, { type: "volume", source: "bb-r-1-git-gate", target: "/var/lib/bb/store" }],
    publish: [8888, 9418],
    init: true,
    user: "1000:1000",
    workdir: "/w",
    entrypoint: "node",
    cmd: ["/opt/bb/sidecar/init.js", "--daemons", "firewall"],
  });
  assert.deepEqual(args, [
    "run", "--detach", "--name", "bb-r-1-bundle", "--restart", "no",
    "--label", "bot-bottle=1", "--label", "bot-bottle.role=bundle",
    "--network", "bb-r-1-int", "--network-alias", "firewall", "--network-alias", "git-gate",
    "--mount", 'type=bind,"source=/s/dir,x",target=/etc/bb,readonly',
    "--mount", "type=volume,source=bb-r-1-git-gate,target=/var/lib/bb/store",
    "--publish", "127.0.0.1::8888/tcp", "--publish", "127.0.0.1::9418/tcp",
    "--init", "--user", "1000:1000", "--workdir", "/w", "--entrypoint", "node",
    "bot-bottle/sidecar:abc", "/opt/bb/sidecar/init.js", "--daemons", "firewall",
  ]);
});

test("runArgs() caps memory with swap held to the same figure, and CPUs only when given", () => {
  const { args } = runArgs({ name: "n", image: "i", labels: {}, memoryMiB: 1536, cpus: 0.5, pidsLimit: 64 });
  assert.deepEqual(args.slice(args.indexOf("--pids-limit")), ["--pids-limit", "64", "--memory", "1536m", "--memory-swap", "1536m", "--cpus", "0.5", "i"]);
  const bare = runArgs({ name: "n", image: "i", labels: {} }).args;
  assert.ok(!bare.includes("--memory") && !bare.includes("--cpus"), bare.join(" "));
});

test("runArgs() refuses an environment name docker could not pass", () => {
  assert.throws(() => runArgs({ name: "n", image: "i", labels: {}, env: { "A=B": "x" } }), /Invalid environment variable name/);
});
