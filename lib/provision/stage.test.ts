// Where provisioning stages the bottle's files and the copy of your checkout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { run } from "../proc.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { samplePlan } from "../../tests/support/plans.ts";
import type { Plan } from "../plan/schema.ts";
import { stage } from "./stage.ts";

type Ready = Plan & { bundle: NonNullable<Plan["bundle"]>; vm: NonNullable<Plan["vm"]> };

test("the checkout is staged inside the bottle's state dir, in a folder only you may enter, gone after cleanup; a killed run's leftovers go at the next", async (t) => {
  const dir = await tempDir(t);
  const stateDir = join(dir, "bottles", "shell-ab12");
  const checkout = join(dir, "checkout");
  await mkdir(checkout, { recursive: true });
  await writeFile(join(checkout, "secret.txt"), "only mine\n");
  await writeFile(join(dir, "ca.pem"), "-----BEGIN CERTIFICATE-----\n");
  const p = samplePlan();
  const plan: Ready = {
    ...p,
    files: { ...p.files, dir: stateDir },
    bundle: {
      container: "c",
      image: "i",
      networks: { internal: "n", egress: "e" },
      caCert: join(dir, "ca.pem"),
      agentUrls: { proxy: "http://firewall:8888", gitGate: null, supervise: null },
      hostPorts: null,
      loopbackAddr: null,
      startedAt: "t",
    },
    vm: { kind: "docker", image: "a", imageId: null, name: "v", artifact: null, user: "node", home: "/home/node", env: {}, startedAt: "t" },
  };
  const inTmp = () => readdirSync(tmpdir()).filter((n) => n.startsWith(`bb-provision-${plan.slug}`));
  const before = inTmp();

  // What a provisioning killed half-way leaves behind.
  await mkdir(join(stateDir, "provision", "stage-old"), { recursive: true });
  const staged = await stage(plan, { cwd: checkout });
  const area = join(stateDir, "provision");
  assert.ok(staged.tarFile.startsWith(area + "/"), `staged at ${staged.tarFile}, not inside ${area}`);
  assert.equal(statSync(area).mode & 0o777, 0o700, "the staging folder is open to other users");
  assert.ok(!existsSync(join(area, "stage-old")), "a killed run's staging was left in place");
  assert.deepEqual(inTmp(), before, "provisioning staged files in $TMPDIR");
  const listing = await run(["tar", "-tf", staged.tarFile]);
  assert.match(listing.stdout, /checkout\.tar|workdir|home\/node/, listing.stdout);

  await staged.cleanup();
  assert.ok(!existsSync(area), "cleanup left the staging folder");
});
