// bb-provision: set up the inside of a started bottle. Reads a plan with bundle and vm
// sections and, in one checked exec: trusts the bottle CA (system store and
// NODE_EXTRA_CA_CERTS), writes ~/.gitconfig (every declared upstream rewritten to
// git-gate, plus git_user), copies the prompt and skills, registers the supervise MCP
// server with the agent CLI, and copies the host checkout when the plan has --cwd. On
// smolmachines it also hands the VM the proxy, git-gate and supervise URLs with the
// bottle's agent key (read from bundle.agentKeyFile; the plan's are without it), in the
// tar on the exec's stdin. Waits for the bundle's daemons first (see bb-bundle
// --no-wait). Writes the plan with its "provision" section. A Ctrl-C before the plan goes
// out stops it with 130, saying what it provisioned stays; one after changes nothing.
//
//   bb-prepare coder --cwd . | bb-bundle | bb-vm | bb-provision > plan.json
//
// Exit codes: see --help.
import { homedir } from "node:os";
import process from "node:process";
import { forwardedCredentials } from "../../lib/credentials.ts";
import { awaitBundle, readyTimeoutMs } from "../../lib/bundle/readiness.ts";
import { createProgram, interruptSignal, mainOf, readPlanInput, savedThenLastStop, writePlan, type CommonOptions } from "../../lib/cli.ts";
import { refuseSection } from "../../lib/plan/io.ts";
import type { Plan } from "../../lib/plan/schema.ts";
import { provision, type Target } from "../../lib/provision/provision.ts";
import { openSmolvm } from "../../lib/smolvm/driver.ts";
import { agentContainer, execCaptured } from "../../lib/vm/docker.ts";
import { rootExec } from "../../lib/vm/env.ts";
import { smolvmExecRoot } from "../../lib/vm/smolvm.ts";

type Ready = Plan & { bundle: NonNullable<Plan["bundle"]>; vm: NonNullable<Plan["vm"]> };

const program = createProgram("bb-provision", "Provision a started bottle: CA, gitconfig, prompt, skills, supervise MCP, checkout.", {
  example: "bb-prepare shell | bb-bundle | bb-vm | bb-provision > plan.json",
  readsPlan: true,
  docker: true,
})
  .option("--ready-timeout <seconds>", "how long to wait for each bundle daemon to answer first", "30")
  .action(async (o: CommonOptions & { readyTimeout: string }) => {
    const timeoutMs = readyTimeoutMs(o.readyTimeout);
    const plan = (await readPlanInput(o, ["bundle", "vm"])) as Ready;
    // Again would unpack the host checkout over the agent's ~/work, losing its changes.
    refuseSection(plan, "provision");
    // The daemons before the bottle is touched: provisioning registers them with the agent,
    // and a bundle started with `bb-bundle --no-wait` may still be coming up. One probe, and
    // no word, when they all answer at its first look (which waits up to 2 s in the bundle,
    // so in the start flow they usually do); a longer wait is reported as it goes. The
    // files are staged on the host meanwhile (provision()).
    const { agentFiles } = await forwardedCredentials(plan, { home: homedir(), env: process.env });
    // What it put in the bottle stays (nothing takes a CA or a copied checkout back out):
    // a Ctrl-C before the plan goes out stops it, saying so, and the plan saved stays the
    // one that came in.
    const signal = interruptSignal(`stopping (what is provisioned in bottle ${plan.slug} stays: bb-cleanup --slug ${plan.slug} removes the bottle)`);
    const bottle = awaitBundle(plan, { timeoutMs, signal, quietIfUp: true, what: `Cannot provision ${plan.slug}` }).then(() => rootShell(plan));
    const done = await provision(plan, bottle, { agentFiles });
    await savedThenLastStop(plan, signal, `the plan went out on stdout: bottle ${plan.slug} is provisioned (bb-cleanup --slug ${plan.slug} removes it)`)(done);
    await writePlan(done);
  });

/** Commands as root in the agent: the docker container by the id bb-vm recorded (see agentContainer). */
async function rootShell(plan: Ready): Promise<Target> {
  if (plan.vm.kind === "smolvm") {
    const smolvm = await openSmolvm();
    return { execRoot: (argv, input) => smolvmExecRoot(smolvm, plan, argv, input) };
  }
  const container = await agentContainer(plan);
  return { execRoot: (argv, input) => execCaptured(container, argv, { root: rootExec(plan), input }) };
}

await mainOf(program);
