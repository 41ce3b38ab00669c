import assert from "node:assert/strict";
import { test } from "node:test";
import { AGENT } from "../layout.ts";
import { agentExecArgv } from "./docker.ts";

test("agentExecArgv() runs as the agent user with its HOME, or as root; argv passes through sh's exec untouched", () => {
  const argv = agentExecArgv("c0ffee", ["A=1", "echo", "$HOME"], { interactive: true, tty: true, workdir: "/w" });
  assert.deepEqual(argv, [
    "docker", "exec", "--interactive", "--tty", "-e", `HOME=${AGENT.home}`, "--user", AGENT.user, "--workdir", "/w",
    "c0ffee", "sh", "-c", 'exec "$@"', "sh", "A=1", "echo", "$HOME",
  ]);
  assert.deepEqual(agentExecArgv("c0ffee", ["id"], { root: true }), ["docker", "exec", "--user", "0", "c0ffee", "sh", "-c", 'exec "$@"', "sh", "id"]);
});
