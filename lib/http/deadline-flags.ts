// The flags that set a proxy's upstream deadlines (upstream-deadlines.ts), one wording for
// egress and the firewall: whole seconds on the command line, milliseconds inside.
import { type Command, Option, wholeNumber } from "../cli.ts";
import { DEFAULT_DEADLINES, type Deadlines } from "./upstream-deadlines.ts";

export interface DeadlineFlags {
  connectTimeout: number;
  headTimeout: number;
}

/** Add --connect-timeout and --head-timeout to `program`; `when` says how else they apply (the firewall's: to its waits on egress). */
export function addDeadlineOptions(program: Command, when = ""): Command {
  for (const option of [
    new Option("--connect-timeout <seconds>", `answer 504 when an upstream does not accept a connection (and finish TLS) within this long${when}`)
      .argParser(wholeNumber("--connect-timeout", 1))
      .default(DEFAULT_DEADLINES.connectMs / 1000),
    new Option("--head-timeout <seconds>", `answer 504 when an upstream sends no response head this long after the whole request; long, as an LLM API answers a request that does not stream only when done (a streamed body is never timed)${when}`)
      .argParser(wholeNumber("--head-timeout", 1))
      .default(DEFAULT_DEADLINES.headMs / 1000),
  ]) program.addOption(option);
  return program;
}

export function deadlinesOf(flags: DeadlineFlags): Deadlines {
  return { connectMs: flags.connectTimeout * 1000, headMs: flags.headTimeout * 1000 };
}
