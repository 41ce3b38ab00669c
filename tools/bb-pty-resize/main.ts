// bb-pty-resize: run an interactive `smolvm machine exec -t ...` and keep the guest PTY
// the size of the host terminal, which smolvm before 0.8.1 does not do. Reads no plan;
// the command to wrap comes after `--`. A pass-through when stdin/stdout is not a
// terminal or when smolvm forwards window size itself. Exit code: the wrapped command's
// (or 1/2 for its own failures, see the table in --help).
//
//   bb-pty-resize -- smolvm machine exec -i -t --name bb-researcher-k3x9 -- claude
import { createProgram, mainOf, setExitCode } from "../../lib/cli.ts";
import { BbError } from "../../lib/errors.ts";
import { DEFAULT_FIRST_SYNC_MS, runWithPtyResize } from "./resize.ts";

const program = createProgram("bb-pty-resize", "Run an interactive smolvm exec and forward host terminal resizes into the VM's PTY.", {
  example: "bb-pty-resize -- smolvm machine exec -i -t --name bb-researcher-k3x9 -- claude",
})
  .argument("<command...>", "the smolvm machine exec -t command to run (after --)")
  .option("--name <machine>", "machine whose PTYs to resize (default: the --name in the command)")
  .option("--smolvm <path>", "smolvm executable for the side channel (default: the command's first word)")
  .option("--first-sync-ms <ms>", "wait this long before the first resize", String(DEFAULT_FIRST_SYNC_MS))
  .passThroughOptions()
  .addHelpText(
    "after",
    `
How it works:
  smolvm before 0.8.1 starts an exec -t PTY at 0x0 and never follows the host terminal.
  This tool runs the command with the terminal inherited and, once ~2 s after start
  (earlier races libkrun's exec bringup) and on every SIGWINCH, runs a second exec:
    smolvm machine exec --name M -- sh -c 'for p in /dev/pts/[0-9]*; do stty -F "$p" rows R cols C; done'
  with stdin from /dev/null (sharing the terminal makes smolvm kill one of the two).
  It does nothing extra when stdin or stdout is not a terminal, or when smolvm is 0.8.1
  or later (it forwards resizes itself). The exit code is the wrapped command's.`,
  )
  .action(async (command: string[], o: { name?: string; smolvm?: string; firstSyncMs: string }) => {
    const firstSyncMs = Number(o.firstSyncMs);
    if (!Number.isFinite(firstSyncMs) || firstSyncMs < 0) throw new BbError("USAGE", `--first-sync-ms must be a number of milliseconds, not ${o.firstSyncMs}`);
    try {
      setExitCode(program, await runWithPtyResize({ argv: command, machine: o.name, smolvm: o.smolvm, firstSyncMs }));
    } catch (e) {
      if (e instanceof BbError) throw e;
      if ((e as NodeJS.ErrnoException).code === "ENOENT") {
        throw new BbError("SUBPROCESS", `Cannot run ${command[0]}: no such program (is it installed and on PATH?)`, { cause: e });
      }
      throw new BbError("USAGE", (e as Error).message, { cause: e });
    }
  });

await mainOf(program);
