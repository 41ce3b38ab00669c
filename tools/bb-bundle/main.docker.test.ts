// bb-bundle --upstream-ca against a real Docker engine: the bundle gets the certificates
// bb-bundle read and checked, even when the file is replaced (by a FIFO, which a second
// read would wait on forever) while the bundle is being started.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import { ANY_EXIT, run, start } from "../../lib/proc.ts";
import { mintCa } from "../../lib/tls/mod.ts";
import { validatePlan } from "../../lib/plan/io.ts";
import { fifo } from "../../tests/support/fifo.ts";
import { procState } from "../../tests/support/flow-child.ts";
import { skipWhen } from "../../tests/support/skip.ts";
import { tempDir } from "../../tests/support/tmp.ts";
import { REPO, runTool } from "../../tests/support/tools.ts";
import { until } from "../../tests/support/until.ts";

test("--upstream-ca replaced by a FIFO while the bundle starts: bb-bundle neither reads it again nor waits on it, and the bundle trusts what was checked", skipWhen(process.platform !== "linux" && "reads the tool's state in /proc (Linux)", "--upstream-ca swapped mid-start"), async (t) => {
  const dir = await tempDir(t);
  const state = join(dir, "state");
  const prepared = await runTool("bb-prepare", ["shell", "--state-dir", state]);
  assert.equal(prepared.code, 0, prepared.stderr);
  const plan = validatePlan(prepared.json());
  t.after(() => run([join(REPO, "bin/bb-cleanup"), "--yes", "-q", "--state-dir", state, "--slug", plan.slug], { expect: ANY_EXIT }));
  const ca = join(dir, "ca.pem");
  const pem = (await mintCa({ commonName: "test upstream CA" })).certPem;
  await writeFile(ca, pem);

  // Held (stop-after.mjs) once it makes the folder the bundle's copy goes in.
  const bundle = start([join(REPO, "bin/bb-bundle"), "--no-wait", "--upstream-ca", ca], {
    stdio: ["pipe", "pipe", "pipe"],
    env: {
      BB_TEST_LABEL: "1",
      NO_COLOR: "1",
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import=${join(REPO, "tests/support/stop-after.mjs")}`.trim(),
      BB_TEST_STOP_CALL: "mkdir",
      BB_TEST_STOP_PATH: "/upstream-ca$",
    },
  });
  t.after(() => void bundle.kill("SIGKILL"));
  let out = "";
  let err = "";
  bundle.stdout!.on("data", (b: Buffer) => (out += b));
  bundle.stderr!.on("data", (b: Buffer) => (err += b));
  const exited = new Promise<number | null>((r) => bundle.on("close", (code) => r(code)));
  bundle.stdin!.end(prepared.stdout);
  await until("bb-bundle held at the upstream CA's folder", () => procState(bundle.pid!) === "T", { timeoutMs: 120_000, why: () => err });

  const swapped = join(dir, "swapped");
  await fifo(t, swapped);
  await rename(swapped, ca);
  process.kill(bundle.pid!, "SIGCONT");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const code = await Promise.race([exited, new Promise<"hung">((r) => (timer = setTimeout(() => r("hung"), 60_000)))]);
  clearTimeout(timer);
  assert.equal(code, 0, `bb-bundle (${code}):\n${err}`);
  const bundled = validatePlan(JSON.parse(out));
  assert.equal(readFileSync(join(bundled.files.dir, "upstream-ca", "ca.pem"), "utf8"), pem, "the bundle's CA is not the one that was checked");
});
