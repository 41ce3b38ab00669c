// Where provisioning stages the bottle's files and the copy of your checkout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, readFile, readlink, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { BbError } from "../errors.ts";
import { run } from "../proc.ts";
import { fifo, settled } from "../../tests/support/fifo.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { samplePlan } from "../../tests/support/plans.ts";
import type { Plan } from "../plan/schema.ts";
import { gitconfigText, stage } from "./stage.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { noTar, withTar } from "../../tests/support/tar.ts";
import { AGENT } from "../layout.ts";

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
      networks: { internal: "n", egress: "e" }, networkIds: null,
      caCert: join(dir, "ca.pem"),
      agentUrls: { proxy: "http://firewall:8888", gitGate: null, supervise: null },
      hostPorts: null,
      loopbackAddr: null,
      startedAt: "t",
    },
    vm: { kind: "docker", image: "a", imageId: null, name: "v", id: null, artifact: null, user: "node", home: "/home/node", env: {}, startedAt: "t" },
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
  const listing = (await run(["tar", "-tf", staged.tarFile])).stdout.split("\n");
  assert.ok(listing.includes(`.${AGENT.checkoutTar}`), listing.join("\n"));
  const guest = join(dir, "guest");
  await mkdir(guest);
  await run(["tar", "-x", "--no-same-owner", "-C", guest, "-f", staged.tarFile, `.${AGENT.checkoutTar}`]);
  const packed = (await run(["tar", "-tf", join(guest, AGENT.checkoutTar)])).stdout.split("\n");
  assert.ok(packed.includes("./secret.txt"), packed.join("\n"));

  await staged.cleanup();
  assert.ok(!existsSync(area), "cleanup left the staging folder");
});

for (const flavor of ["gnu", "bsd"] as const) {
  const tar = flavor === "gnu" ? "GNU tar" : "bsdtar (macOS's tar)";
  test(`a git checkout stages with ${tar}: its files come along, its .git/config only as the scrubbed copy`, skipWhen(await noTar(flavor), `staging with ${tar}`), (t) =>
    withTar(t, flavor, async () => {
      const dir = await tempDir(t);
      const checkout = join(dir, "checkout");
      const env = { GIT_CONFIG_GLOBAL: join(dir, "gc"), GIT_CONFIG_NOSYSTEM: "1" };
      await writeFile(join(dir, "gc"), "[user]\n\tname = T\n\temail = t@example.test\n");
      await run(["git", "init", "-q", checkout], { env });
      await run(["git", "remote", "add", "origin", "https://x-access-token:ghp_secret0123456789@github.com/acme/widget.git"], { cwd: checkout, env });
      await mkdir(join(checkout, "src"));
      await writeFile(join(checkout, "src", "main.ts"), "export {};\n");
      const p = samplePlan();
      const plan = { ...p, files: { ...p.files, dir: join(dir, "bottles", p.slug) }, bundle: { caCert: join(dir, "ca.pem"), agentUrls: { supervise: null } }, vm: {} } as unknown as Ready;
      await writeFile(join(dir, "ca.pem"), "-----BEGIN CERTIFICATE-----\n");
      const staged = await stage(plan, { cwd: checkout });
      t.after(() => staged.cleanup());
      // Unpacked as the guest does, with GNU tar: the staging tar, then the checkout's.
      const guest = join(dir, "guest");
      await mkdir(guest);
      await run(["/usr/bin/tar", "-x", "--no-same-owner", "-C", guest, "-f", staged.tarFile]);
      const packed = (await run(["/usr/bin/tar", "-tf", join(guest, AGENT.checkoutTar)])).stdout.split("\n");
      assert.ok(packed.includes("./src/main.ts"), packed.join("\n"));
      assert.ok(packed.includes("./.git/HEAD"), packed.join("\n"));
      assert.ok(!packed.includes("./.git/config"), "the host's .git/config (with its credential) went into the checkout's tar");
      assert.deepEqual(staged.scrubbed.length > 0, true, "the credential in .git/config was not reported as taken out");
    }));
}

test("gitconfigText(): a git_user name or email with #, ;, quotes or a backslash reads back from git exactly as declared", async (t) => {
  const dir = await tempDir(t);
  const p = samplePlan();
  for (const name of ["R2-D2 #1", "team; bots", 'Bob "Bobby" Smith', "CORP\\bob", "  spaced  ", "end\\", "a\nb\tc"]) {
    const email = `${name.trim()}@example.test`;
    const plan = { ...p, bottle: { ...p.bottle, gitUser: { name, email } }, bundle: { agentUrls: { gitGate: null } } } as unknown as Ready;
    const file = join(dir, "gitconfig");
    await writeFile(file, gitconfigText(plan));
    const read = async (key: string) => (await run(["git", "config", "--file", file, "--get", key])).stdout.replace(/\n$/, "");
    assert.equal(await read("user.name"), name, await readFile(file, "utf8"));
    assert.equal(await read("user.email"), email);
    assert.deepEqual((await run(["git", "config", "--file", file, "--name-only", "--list"])).stdout.split("\n").filter(Boolean), ["user.name", "user.email", "init.defaultbranch"], "a value started a line of its own");
  }
});

test("a skill's links are staged as the links they are, not rewritten to the host's paths", async (t) => {
  const dir = await tempDir(t);
  const skill = join(dir, "manifest", "skills", "s");
  await mkdir(join(skill, "sub"), { recursive: true });
  await writeFile(join(skill, "SKILL.md"), "# s\n");
  await symlink("SKILL.md", join(skill, "alias.md"));
  await symlink("../SKILL.md", join(skill, "sub", "up.md"));
  await writeFile(join(dir, "ca.pem"), "-----BEGIN CERTIFICATE-----\n");
  const p = samplePlan();
  const plan = {
    ...p,
    agent: { ...p.agent, skills: [{ name: "s", path: skill }] },
    files: { ...p.files, dir: join(dir, "bottles", p.slug) },
    bundle: { caCert: join(dir, "ca.pem"), agentUrls: { supervise: null, gitGate: null } },
    vm: {},
  } as unknown as Ready;
  const staged = await stage(plan, { cwd: null });
  t.after(() => staged.cleanup());
  const guest = join(dir, "guest");
  await mkdir(guest);
  await run(["tar", "-x", "--no-same-owner", "-C", guest, "-f", staged.tarFile]);
  const at = join(guest, AGENT.home, ".bot-bottle", "skills", "s");
  assert.equal(await readlink(join(at, "alias.md")), "SKILL.md");
  assert.equal(await readlink(join(at, "sub", "up.md")), "../SKILL.md");
  assert.equal(await readFile(join(at, "sub", "up.md"), "utf8"), "# s\n");
});

for (const which of ["caCert", "prompt"] as const) {
  test(`a ${which === "caCert" ? "bottle CA certificate" : "prompt file"} that is a FIFO by the time the bottle is provisioned is refused (STATE, naming it) instead of waited on, and nothing staged is left`, async (t) => {
    const dir = await tempDir(t);
    await writeFile(join(dir, "ca.pem"), "-----BEGIN CERTIFICATE-----\n");
    await writeFile(join(dir, "prompt.md"), "hello\n");
    const fifoAt = join(dir, `${which}.fifo`);
    await fifo(t, fifoAt);
    const p = samplePlan();
    const stateDir = join(dir, "bottles", p.slug);
    const plan = {
      ...p,
      files: { ...p.files, dir: stateDir, prompt: which === "prompt" ? fifoAt : join(dir, "prompt.md") },
      bundle: { caCert: which === "caCert" ? fifoAt : join(dir, "ca.pem"), agentUrls: { supervise: null, gitGate: null } },
      vm: {},
    } as unknown as Ready;
    const err = await settled("the staging done with the FIFO", stage(plan, { cwd: null }));
    assert.ok(err instanceof BbError && err.code === "STATE", String(err));
    assert.equal(err.message, `${fifoAt} is a FIFO, not a regular file`);
    assert.ok(!existsSync(join(stateDir, "provision")), "a refused staging left its folder");
  });
}
