// bb-bundle: start a bottle's sidecar bundle. Reads the plan (stdin or --plan), mints the
// bottle CA, creates the bottle's networks, starts the bundle with only the daemons this
// bottle needs, waits until each answers (unless --no-wait: the start flow lets the agent
// container start meanwhile and bb-provision waits), and writes the plan with its "bundle" section
// (container, networks, the URLs the agent must use) to stdout. On failure or Ctrl-C before
// the plan goes out it removes what it created and prints no plan; a Ctrl-C after that
// leaves the bundle up for the next step, and says so.
//
//   bb-prepare researcher | bb-bundle | bb-vm | bb-provision
//
// Exit codes: see --help.
import { X509Certificate } from "node:crypto";
import { homedir } from "node:os";
import process from "node:process";
import { forwardedCredentials } from "../../lib/credentials.ts";
import { testLabelsIfAsked } from "../../lib/docker/labels.ts";
import { BbError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { createProgram, interruptSignal, mainOf, readPlanInput, savedThenLastStop, writePlan, type CommonOptions } from "../../lib/cli.ts";
import { readyTimeoutMs } from "../../lib/bundle/readiness.ts";
import { startBundle } from "../../lib/bundle/start.ts";
import { ensureImage } from "../../lib/images/mod.ts";
import { refuseSlugElsewhere } from "../../lib/inventory/taken.ts";
import { refuseSection } from "../../lib/plan/io.ts";
import { withEngine } from "../../lib/docker/daemon.ts";
import { loopbackFor } from "../../lib/loopback.ts";
import { openSmolvm } from "../../lib/smolvm/driver.ts";
import { readRegularFile, refusedBecause } from "../../lib/read-regular.ts";

/** Far more than any CA bundle (the system's whole store is ~200 KiB). */
const UPSTREAM_CA_MAX_BYTES = 4 * 1024 * 1024;

const program = createProgram("bb-bundle", "Start a bottle's sidecar bundle (firewall, egress, git-gate, supervise) and add the plan's bundle section.", {
  example: "bb-prepare shell | bb-bundle > plan.json",
  readsPlan: true,
  docker: true,
})
  .option("--upstream-ca <file>", "extra CA certificate (PEM) the bundle trusts for upstream TLS (a corporate proxy, a test upstream)")
  .option("--ready-timeout <seconds>", "how long to wait for each daemon to answer", "30")
  .option("--no-wait", "return once the bundle is started, without waiting for its daemons (bb-provision waits for them first)")
  .action(async (o: CommonOptions & { upstreamCa?: string; readyTimeout: string; wait: boolean }) => {
    const signal = interruptSignal();
    const readyMs = readyTimeoutMs(o.readyTimeout);
    // Before anything is created: a missing file would otherwise fail half-way in.
    const upstreamCaPem = o.upstreamCa === undefined ? undefined : await readUpstreamCa(o.upstreamCa);
    const plan = await readPlanInput(o);
    refuseSection(plan, "bundle");
    // A smolvm that is missing or too old fails bb-vm: say so before a bundle is started for it.
    if (plan.backend === "smolmachines") await openSmolvm();
    const loopbackAddr = plan.backend === "smolmachines" ? await loopbackFor({ platform: process.platform, stateRoot: plan.stateRoot, slug: plan.slug }) : undefined;
    const forwarded = await forwardedCredentials(plan, { home: homedir(), env: process.env });
    for (const source of forwarded.sources) log.step(`bundle: forwarding the host credential from ${source} into egress only`);
    const bundled = await withEngine(async () => {
      // Before anything is made: the names below would be another state root's bottle's.
      await refuseSlugElsewhere({ slug: plan.slug, stateRoot: plan.stateRoot });
      return startBundle(plan, {
        credentials: forwarded.slots,
        sidecarImage: () => ensureImage("sidecar").then((i) => i.ref),
        hostEnv: process.env,
        upstreamCaPem,
        loopbackAddr,
        readyTimeoutMs: readyMs,
        noWait: !o.wait,
        extraLabels: testLabelsIfAsked(),
        signal,
        handOver: savedThenLastStop(plan, signal, `the plan went out on stdout, so bottle ${plan.slug}'s bundle stays up for the next step (bb-cleanup --slug ${plan.slug} removes the bottle)`),
      });
    });
    // Outside the rollback: a reader gone before the plan is written leaves the bundle
    // (writePlan says so and how to remove it).
    await writePlan(bundled);
  });

/** The text of --upstream-ca, read once (the bundle gets this text, not the file again)
 * and never waited on: a FIFO there is refused at once. It must be PEM certificates:
 * anything else would only fail as an upstream's TLS error, at the first request, inside
 * the bundle. */
async function readUpstreamCa(file: string): Promise<string> {
  const pem = await readRegularFile(file, { maxBytes: UPSTREAM_CA_MAX_BYTES }).catch((e: unknown) => {
    throw new BbError("USAGE", `--upstream-ca ${file}: ${refusedBecause(e) ?? "no such readable file"}`, { cause: e });
  });
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new BbError("USAGE", `--upstream-ca ${file}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)`);
  for (const b of blocks) {
    try {
      new X509Certificate(b);
    } catch (e) {
      throw new BbError("USAGE", `--upstream-ca ${file}: a certificate in it does not parse (${(e as Error).message})`);
    }
  }
  return pem;
}

await mainOf(program);
