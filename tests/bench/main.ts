// bench: the project's benchmarks, one subcommand each (`just bench proxy`). Each runs
// on this machine, bounded in time, and prints tables on stdout (or --json); progress goes
// to stderr. Targets are reported as PASS/MISS, never as an exit code: benchmarks report,
// tests assert. Exit codes: 0 ran, 1 the benchmark could not run, 2 usage, 130 interrupted.
//
//   node --import ./node_modules/tsx/dist/loader.mjs tests/bench/main.ts proxy --json | jq '.ratios'
import { createProgram, mainOf } from "../../lib/cli.ts";
import { dlpCommand } from "./dlp.ts";
import { proxyCommand } from "./proxy.ts";
import { startCommand } from "./start.ts";

const program = createProgram("bench", "Benchmarks: measure on this machine, print the numbers and the ratios to the targets.", {
  example: "just bench proxy --duration 2 --connections 1,8",
});
// Made apart from the program, so they take its error prefix ("bench: error: ...") and its
// help settings here; program.command() would have handed them over.
for (const command of [proxyCommand(), startCommand(), dlpCommand()]) program.addCommand(command.copyInheritedSettings(program));

await mainOf(program);
