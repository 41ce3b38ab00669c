import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import { isBbError } from "../errors.ts";
import { which } from "../proc.ts";
import { dockerInfo, withEngine } from "./daemon.ts";

test("dockerInfo() without a reachable engine says how to start one", async (t) => {
  if (!(await which("docker"))) return t.skip("no docker CLI on PATH");
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

test("withEngine() lets the engine's how-to-start message win over the work's own failure", async (t) => {
  if (!(await which("docker"))) return t.skip("no docker CLI on PATH");
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
