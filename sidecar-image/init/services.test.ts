import assert from "node:assert/strict";
import { test } from "node:test";
import { BbError } from "../../lib/errors.ts";
import { defaultArgv, envFor, parseArgvOverride, parseServices } from "./services.ts";

test("defaultArgv() runs the bundled daemon with the in-container paths bb-bundle mounts (docker: the agent-facing ones refuse the egress side)", () => {
  const ctx = { sidecarDir: "/opt/bb/sidecar", slug: "demo-x1", services: ["firewall", "egress", "git-gate", "supervise"] as const, upstreamCa: undefined };
  assert.deepEqual(defaultArgv("firewall", ctx), [
    "node", "/opt/bb/sidecar/firewall.js", "--listen", "0.0.0.0:8888", "--agent-network-only", "--policy", "/bb/firewall/policy.json",
    "--ca-cert", "/bb/ca/ca.pem", "--ca-key-env", "BB_CA_KEY", "--blocked-record", "/bb/firewall-blocked/blocked.json", "--next-hop", "127.0.0.1:9099",
  ]);
  assert.deepEqual(defaultArgv("egress", ctx), ["node", "/opt/bb/sidecar/egress.js", "--listen", "127.0.0.1:9099", "--routes", "/bb/egress/routes.json"]);
  assert.deepEqual(defaultArgv("git-gate", ctx), [
    "node", "/opt/bb/sidecar/git-gate.js", "--listen", "0.0.0.0:9418", "--agent-network-only", "--config", "/bb/git-gate/config.json",
    "--hooks", "/bb/git-gate/hooks", "--data", "/var/lib/bb/git-gate-store/data", "--identities-env", "BB_GIT_IDENTITY_",
  ]);
  assert.deepEqual(defaultArgv("supervise", ctx), [
    "node", "/opt/bb/sidecar/supervise.js", "--listen", "0.0.0.0:9100", "--agent-network-only", "--queue", "/bb/supervise/queue", "--slug", "demo-x1", "--firewall", "127.0.0.1:8888",
    "--allowed-host", "supervise",
  ]);
  assert.throws(() => defaultArgv("supervise", { ...ctx, slug: undefined }), (e: BbError) => e.code === "CONFIG" && /BB_SLUG/.test(e.message));
});

test("defaultArgv() on smolmachines: supervise answers the address the agent reaches it by, and each agent-facing daemon serves only the agent key", () => {
  const ctx = { sidecarDir: "/d", slug: "s", services: ["supervise"] as const, upstreamCa: undefined, loopbackAddr: "127.0.0.17" };
  const argv = defaultArgv("supervise", ctx);
  assert.deepEqual(argv.slice(-2), ["--allowed-host", "127.0.0.17"]);
  assert.equal(argv.filter((a) => a === "--allowed-host").length, 1);
  // Published on loopback, the ports arrive on the bundle's one network, its default route,
  // and every local user can connect there: the agent's key keeps them out instead.
  for (const name of ["firewall", "git-gate", "supervise"] as const) {
    const argv = defaultArgv(name, { ...ctx, services: ["firewall", "git-gate", "supervise"] });
    assert.ok(!argv.includes("--agent-network-only") && argv.includes("--require-agent-key"), name);
  }
});

test("defaultArgv() gives the upstream CA to whichever daemon dials upstreams, and no next hop without egress", () => {
  const ctx = { sidecarDir: "/d", slug: "s", services: ["firewall", "egress"] as const, upstreamCa: "/bb/upstream-ca/ca.pem" };
  assert.deepEqual(defaultArgv("egress", ctx).slice(-2), ["--extra-ca", "/bb/upstream-ca/ca.pem"]);
  assert.deepEqual(defaultArgv("firewall", ctx).slice(-2), ["--next-hop", "127.0.0.1:9099"]);
  const alone = defaultArgv("firewall", { ...ctx, services: ["firewall"] });
  assert.deepEqual(alone.slice(-2), ["--upstream-ca", "/bb/upstream-ca/ca.pem"]);
  assert.ok(!alone.includes("--next-hop"));
  assert.ok(!defaultArgv("firewall", { ...ctx, services: ["firewall"], upstreamCa: undefined }).includes("--next-hop"));
});

test("parseServices() keeps order, drops blanks and duplicates, and names an unknown service", () => {
  assert.deepEqual(parseServices(" firewall, egress,,firewall "), ["firewall", "egress"]);
  assert.deepEqual(parseServices(""), []);
  assert.throws(() => parseServices("firewall,pipelock"), (e: BbError) => e.code === "USAGE" && /"pipelock".*known: firewall, egress, git-gate, supervise/.test(e.message));
});

test("parseArgvOverride() accepts argv per known service only", () => {
  assert.deepEqual(parseArgvOverride('{"egress":["node","fake.js"]}'), { egress: ["node", "fake.js"] });
  assert.deepEqual(parseArgvOverride(undefined), {});
  assert.throws(() => parseArgvOverride('{"dns":["x"]}'), (e: BbError) => e.code === "USAGE");
  assert.throws(() => parseArgvOverride('{"egress":[]}'), (e: BbError) => e.code === "USAGE");
  assert.throws(() => parseArgvOverride("{"), (e: BbError) => e.code === "USAGE");
});

test("envFor() passes basics to all, EGRESS_TOKEN_* to egress only, BB_SENSITIVE_* to firewall and git-gate only, the agent key to the three agent-facing daemons, the CA key to the firewall only, the SSH identities to git-gate only", () => {
  const env = { PATH: "/bin", HOME: "/root", NODE_EXTRA_CA_CERTS: "/ca.pem", LC_ALL: "C", EGRESS_TOKEN_0: "t", BB_SENSITIVE_0: "s", GITHUB_TOKEN: "g", EGRESS_TOKENX: "y", BB_AGENT_KEY: "k", BB_CA_KEY: "ca", BB_GIT_IDENTITY_0: "id" };
  const basics = { PATH: "/bin", HOME: "/root", NODE_EXTRA_CA_CERTS: "/ca.pem", LC_ALL: "C" };
  assert.deepEqual(envFor("egress", env), { ...basics, EGRESS_TOKEN_0: "t" });
  assert.deepEqual(envFor("firewall", env), { ...basics, BB_SENSITIVE_0: "s", BB_AGENT_KEY: "k", BB_CA_KEY: "ca" });
  assert.deepEqual(envFor("git-gate", env), { ...basics, BB_SENSITIVE_0: "s", BB_AGENT_KEY: "k", BB_GIT_IDENTITY_0: "id" });
  assert.deepEqual(envFor("supervise", env), { ...basics, BB_AGENT_KEY: "k" });
});
