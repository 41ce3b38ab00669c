// bb-vm: the agent's machine. With no subcommand it reads a bundled plan, builds or reuses
// the agent image, starts the agent (docker: a container on the bottle's internal network
// only; smolmachines: a smolvm microVM allowed to reach only the bundle's loopback ports)
// and writes the plan with its "vm" section. `exec -- CMD` runs a command in the bottle
// and exits with its code; `attach` runs the agent interactively with a real TTY.
//
//   bb-prepare shell | bb-bundle | bb-vm | bb-provision > plan.json
//   bb-vm exec --plan plan.json -- git status
//   bb-vm attach --slug shell-k3x9
//
// A Ctrl-C while it starts the agent, until its plan goes out, removes the agent it started,
// prints no plan and exits 130; one after that leaves the agent up for the next step, and
// says so.
//
// Exit codes: see --help (exec and attach exit with the command's code).
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { createProgram, interruptSignal, Option, savedThenLastStop, type Command, mainOf, readPlanInput, setExitCode, writePlan, type CommonOptions } from "../../lib/cli.ts";
import { dockerInfo, withEngine } from "../../lib/docker/daemon.ts";
import { testLabelsIfAsked } from "../../lib/docker/labels.ts";
import { BbError, EXIT, isBbError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { ensureImage, prefetchAgentImage } from "../../lib/images/mod.ts";
import { AGENT } from "../../lib/layout.ts";
import { repoRoot } from "../../lib/paths.ts";
import { refuseSlugElsewhere } from "../../lib/inventory/taken.ts";
import { refuseSection } from "../../lib/plan/io.ts";
import { locatePlan, type LocateOptions } from "../../lib/plan/locate.ts";
import type { Plan } from "../../lib/plan/schema.ts";
import { agentCommand } from "../../lib/providers.ts";
import { openSmolvm } from "../../lib/smolvm/driver.ts";
import { agentContainer, agentGone, execInteractive, folderGone, internalNetworkId, startDockerAgent } from "../../lib/vm/docker.ts";
import { rootExec } from "../../lib/vm/env.ts";
import { goneMessage } from "../../lib/vm/gone.ts";
import { smolvmExecInteractive, startSmolvmAgent } from "../../lib/vm/smolvm.ts";
import { packImage } from "../../smolmachine-pack/pack.ts";

type Bundled = Plan & { bundle: NonNullable<Plan["bundle"]> };
type Vmd = Plan & { vm: NonNullable<Plan["vm"]> };

const program = createProgram("bb-vm", "Start the agent's machine for a bundled plan; exec commands in it or attach the agent.", {
  example: "bb-prepare shell | bb-bundle | bb-vm | bb-provision > plan.json && bb-vm exec --plan plan.json -- id",
  readsPlan: true,
  docker: true,
})
  // Options after a subcommand belong to it (bb-vm exec --plan F), not to bb-vm itself.
  .enablePositionalOptions()
  // A default action hides commander's `help` subcommand; `bb-vm help exec` should work.
  .helpCommand(true)
  // For the escape suite only (hidden from --help): the internal network must never let a
  // query for an outside name leave, and tests point this at a recording resolver.
  .addOption(
    new Option("--dns <ip>", "DNS server the agent container's resolver forwards outside names to (repeatable; docker backend)")
      .argParser((ip: string, acc: string[] = []) => [...acc, ip])
      .hideHelp(),
  )
  .action(async (o: CommonOptions & { dns?: string[] }) => {
  const signal = interruptSignal();
  // Piped after bb-bundle, this process starts while the bundle is still starting: look the
  // agent image up now instead of after the plan arrives.
  prefetchAgentImage();
  const plan = (await readPlanInput(o, ["bundle"])) as Bundled;
  refuseSection(plan, "vm");
  const agentImage = () => ensureImage("agent");
  const handOver = savedThenLastStop(plan, signal, `the plan went out on stdout, so bottle ${plan.slug}'s agent stays up for the next step (bb-cleanup --slug ${plan.slug} removes the bottle)`);
  const started: Plan = await withEngine(async () => {
    // The agent's name, and docker's network it joins, would be another root's bottle's.
    // A plan bb-bundle wrote just now names its network by ID, which no other root's can
    // be, and docker refuses the name then: startDockerAgent asks only if docker run fails.
    if (!internalNetworkId(plan)) await refuseSlugElsewhere({ slug: plan.slug, stateRoot: plan.stateRoot });
    if (plan.backend === "docker") return startDockerAgent(plan, { agentImage, extraLabels: testLabelsIfAsked(), dns: o.dns, signal, handOver });
    const smolvm = await openSmolvm();
    return startSmolvmAgent(plan, { agentImage, smolvm, pack: (image) => packImage({ image, smolvm }), signal, handOver });
  });
  // Outside the rollback: a reader gone before the plan is written leaves the agent
  // (writePlan says so and how to remove it).
  await writePlan(started);
});

const locateFlags = (c: ReturnType<typeof program.command>) =>
  c
    .option("--plan <file>", "the bottle's plan (default: stdin)")
    .option("--slug <slug>", "find the plan of a running bottle by slug")
    .option("--state-dir <dir>", "state root (with --slug)");

async function execIn(plan: Vmd, argv: string[], o: { root?: boolean; tty: boolean; interactive: boolean; workdir?: string; askStarted?: boolean }): Promise<number> {
  if (plan.vm.kind === "docker") {
    // By the id bb-vm recorded: a container of that name now may be another root's bottle.
    const container = await agentContainer(plan);
    const { code, cli, out, dockerSaid, neverStarted } = await execInteractive(container, argv, { ...o, root: o.root ? rootExec(plan) : undefined, slug: plan.slug });
    const why = code === 0 ? null : await whyNotRun(plan, container, code, cli.text() + out.text(), o.workdir);
    if (why === null) {
      // The lines the docker CLI wrote were the command's own after all, or the CLI's on a
      // bottle that can run commands: either way, as they came; but the runtime's refusal
      // to start the command (126) goes to stderr, off the command's output.
      cli.release();
      out.release(code === 126 ? process.stderr : undefined);
      // With a terminal, docker's stderr is docker's alone: words there mean docker did not
      // start the session (refused the exec, could not enter ~/work, ...), which the start
      // flow must not take for an agent that ran and exited (keep=false tears down then).
      // Without one (attach), the engine's events say it instead.
      if (code !== 0 && (dockerSaid || neverStarted)) {
        const said = dockerSaid ? "saying what is above" : "the engine never started it";
        throw new BbError("VM", `bottle ${plan.slug}: the session in ${plan.vm.name} did not start (docker exec exited ${code}, ${said}); the bottle runs on`, {
          exitCode: EXIT.notRun,
          details: { slug: plan.slug, container: plan.vm.name, dockerExit: code, notStarted: true },
        });
      }
      return code;
    }
    // A teardown under way says so itself.
    if (!why) return code;
    // docker exec that could not start says "No such container" or "is not running" with
    // exit 1, as a command that failed would (or 126, a start folder gone): the bottle
    // failed, not the command.
    if (code === 1 || code === 126) throw new BbError("VM", why, { exitCode: EXIT.notRun, details: { slug: plan.slug, container: plan.vm.name } });
    // Killed with its container (137), or ended by its stop: the command's own code.
    log.error(why);
    return code;
  }
  const smolvm = await openSmolvm();
  return smolvmExecInteractive(smolvm, plan, argv, { tty: o.tty, workdir: o.workdir, ptyResize: join(repoRoot(), "bin", "bb-pty-resize"), root: o.root });
}

/**
 * Why the agent container could not run (or finish) a command that exited `code`, in place
 * of what the docker CLI said (`said`, kept for -v): null when it can run commands, so the
 * code is the command's; "" when a teardown under way says so itself (goneMessage).
 */
async function whyNotRun(plan: Vmd, container: string, code: number, said: string, workdir?: string): Promise<string | null> {
  const drop = () => said && log.debug(`docker exec said: ${said.trim()}`);
  // The folder exec and attach start in (the copied checkout) was removed inside the
  // bottle: docker's runtime starts nothing there, exits 126 and says why on the command's
  // stdout (held back, as `said`), in words that do not name the bottle or the fix.
  if (code === 126 && workdir && (await folderGone(container, workdir))) {
    drop();
    return `bottle ${plan.slug}: ${workdir}, where commands start, is gone from its agent container (removed inside the bottle), so docker could not start the command there; \`docker exec -u ${plan.vm.user} ${plan.vm.name} mkdir -p ${workdir}\` makes it again`;
  }
  const gone = await agentGone(container, { killed: code === 137 });
  // docker could not say: an engine out of reach fails exec with exit 1 too, in docker's
  // words alone; said as every tool says it (dockerInfo throws), the command never ran.
  if (gone === null && code === 1) {
    await dockerInfo().catch((e: unknown) => {
      drop();
      throw isBbError(e) ? new BbError(e.code, e.message, { cause: e, exitCode: EXIT.notRun, details: e.details }) : e;
    });
  }
  if (gone === null) return null;
  drop();
  if (gone === "is paused") return `bottle ${plan.slug}: its agent container ${plan.vm.name} is paused (docker pause); \`docker unpause ${plan.vm.name}\` resumes it`;
  return (await goneMessage(plan, gone)) ?? "";
}

const passedThrough = (what: string) =>
  `\nExit codes: ${what}; 125 when the bottle could not run it (its agent container is gone, stopped or paused, or docker did not start it: told with a terminal, and for attach without one; attach's --not-started-file tells this 125 from the agent's own); before it runs, the table of \`bb-vm --help\` (2 usage, 3 invalid plan, 1 any other failure).\n`;

locateFlags(program.command("exec").description("run a command in the bottle as user node (or root with --root); exits with its code"))
  .addHelpText("after", passedThrough("the command's own"))
  .argument("<cmd...>", "the command and its arguments (after --)")
  .option("--root", "run as root")
  .option("-t, --tty", "allocate a TTY")
  .passThroughOptions()
  .action(async (cmd: string[], _o: unknown, command: Command) => {
    // With globals: `bb-vm --plan F exec -- CMD` names the plan before the subcommand.
    const o = command.optsWithGlobals<LocateOptions & { root?: boolean; tty?: boolean }>();
    if (o.tty && !process.stdin.isTTY) throw new BbError("USAGE", "--tty needs a terminal on stdin (this one is a pipe or a file); leave -t out to pipe input to the command");
    const plan = (await locatePlan(o, ["vm"])) as Vmd;
    // Where attach starts the agent: the copied checkout when there is one.
    const workdir = plan.cwd ? AGENT.workdir : undefined;
    setExitCode(command, await execIn(plan, cmd, { root: o.root, tty: o.tty ?? false, interactive: !process.stdin.isTTY || Boolean(o.tty), workdir }));
  });

locateFlags(program.command("attach").description("run the agent (claude, codex or bash) interactively in the bottle"))
  .addHelpText("after", passedThrough("the agent's own when it exits"))
  .option("--not-started-file <path>", "when the session never started (exit 125, the bottle still up), write why into this file: a caller tells that from the agent's own exit 125 by it")
  .action(async (_o: unknown, command: Command) => {
    const o = command.optsWithGlobals<LocateOptions & { notStartedFile?: string }>();
    try {
      await attach(o, command);
    } catch (e) {
      if (o.notStartedFile && isBbError(e) && e.details.notStarted === true) {
        // The session's own failure is what to say; a file that cannot be written only adds a line.
        await writeFile(o.notStartedFile, `${e.message}\n`).catch((we: Error) => log.warn(`could not write --not-started-file ${o.notStartedFile}: ${we.message}`));
      }
      throw e;
    }
  });

/** Run the plan's agent in its bottle, its exit code the tool's. */
async function attach(o: LocateOptions, command: Command): Promise<void> {
  const plan = (await locatePlan(o, ["vm"])) as Vmd;
  const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  // Claude Code and codex read a terminal-less stdin as a one-shot prompt, and fail on an
  // empty one with their own words: say up front what is going on.
  if (!tty) log.warn(`attach: no terminal (stdin or stdout is not one), so ${plan.agent.provider} runs without a TTY; to script a bottle, use: just run agent=${plan.agent.name} -- CMD`);
  // Asked without a terminal: the start flow keeps a bottle whose session never started.
  setExitCode(command, await execIn(plan, agentCommand(plan), { tty, interactive: true, workdir: plan.cwd ? AGENT.workdir : undefined, askStarted: !tty }));
}

await mainOf(program);
