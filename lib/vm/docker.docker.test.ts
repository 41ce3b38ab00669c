// The agent's captured exec (the escape suite's, bb-provision's) against a real engine:
// what the runtime says when it cannot start the command is never the command's output.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { LABEL, removeContainer, runContainer } from "../docker/index.ts";
import { prepare } from "../prepare/prepare.ts";
import { run } from "../proc.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { REPO } from "../../tests/support/tools.ts";
import { execCaptured } from "./docker.ts";
import { rootExec } from "./env.ts";

const name = `bbt-vmexec-${randomBytes(3).toString("hex")}`;

before(async () => {
  await runContainer({ name, image: "debian:bookworm-slim", labels: { [LABEL.test]: "1" }, network: "none", init: true, entrypoint: "sleep", cmd: ["infinity"] });
  // The agent image's user, which the sleeper's image has not.
  await run(["docker", "exec", name, "useradd", "-m", "node"]);
});

after(() => removeContainer(name));

test("execCaptured() of a command the runtime cannot start (126: its folder gone; as root, /usr/bin/env gone) captures no stdout: the runtime's line is on stderr", async (t) => {
  const gone = await execCaptured(name, ["pwd"], { workdir: "/home/node/work" });
  assert.equal(gone.code, 126);
  assert.equal(gone.stdout, "", "the runtime's line was captured as the command's output");
  assert.match(gone.stderr, /^OCI runtime exec failed: exec failed: .*chdir to cwd/);

  const stateRoot = await tempDir(t, "bb-vmexec-");
  const plan = await prepare({ agent: "researcher", manifestDir: join(REPO, "bottles"), stateRoot, backend: "docker", cwd: null, identity: name });
  await run(["docker", "exec", name, "mv", "/usr/bin/env", "/usr/bin/env.gone"]);
  try {
    const root = await execCaptured(name, ["true"], { root: rootExec(plan), input: "" });
    assert.equal(root.code, 126);
    assert.equal(root.stdout, "", "the runtime's line was captured as the command's output");
    assert.match(root.stderr, /^OCI runtime exec failed: .*\/usr\/bin\/env/m);
  } finally {
    await run(["docker", "exec", name, "mv", "/usr/bin/env.gone", "/usr/bin/env"]);
  }
  // A command's own output, even in those words, on that exit code, is its own.
  const own = await execCaptured(name, ["sh", "-c", "echo 'OCI runtime exec failed: mine'; echo err >&2; exit 126"]);
  assert.deepEqual([own.code, own.stdout, own.stderr], [126, "OCI runtime exec failed: mine\n", "err\n"]);
});
