import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { isBbError } from "../errors.ts";
import { which } from "../proc.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { dockerInfo, withEngine } from "./daemon.ts";

const noDocker = !(await which("docker")) && "no docker CLI on PATH";

test("dockerInfo() without a reachable engine says how to start one", skipWhen(noDocker, "dockerInfo() without an engine"), async () => {
  const saved = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = "unix:///nonexistent/bb-test-docker.sock";
  try {
    await assert.rejects(dockerInfo(), (e) => {
      assert.ok(isBbError(e));
      assert.equal(e.code, "DOCKER");
      assert.match(e.message, /^Cannot reach the Docker engine \(.*(Cannot connect|nonexistent).*\)/);
      assert.match(e.message, /systemctl start docker/);
      assert.match(e.message, /Docker Desktop/);
      return true;
    });
  } finally {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  }
});

test("withEngine() lets the engine's how-to-start message win over the work's own failure", skipWhen(noDocker, "withEngine() without an engine"), async () => {
  const saved = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = "unix:///nonexistent/bb-test-docker.sock";
  try {
    await assert.rejects(
      withEngine(() => Promise.reject(new Error("image inspect failed"))),
      (e) => isBbError(e) && e.code === "DOCKER" && /^Cannot reach the Docker engine/.test(e.message),
    );
  } finally {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  }
});

test("dockerInfo() when `docker version` answers with something other than JSON names what it printed, not a parse error", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "bb-docker-version-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const saved = process.env.PATH;
  t.after(() => void (process.env.PATH = saved));
  process.env.PATH = `${dir}:${saved}`;
  for (const [printed, said] of [["", "printed nothing"], ["Emulate Docker CLI using podman\n", 'printed "Emulate Docker CLI using podman"']]) {
    await writeFile(join(dir, "docker"), `#!/bin/sh\nprintf '%s' '${printed}'\n`);
    await chmod(join(dir, "docker"), 0o755);
    await assert.rejects(dockerInfo(), (e) => {
      assert.ok(isBbError(e));
      assert.equal(e.code, "DOCKER");
      assert.ok(e.message.includes(said), e.message);
      assert.match(e.message, /not JSON\. Is `docker` on PATH the Docker CLI\?$/);
      return true;
    });
  }
});
