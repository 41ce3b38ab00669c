// bb-list: the bottles that are live right now, across every backend this machine has
// (docker containers and networks by label, smolvm machines, state dirs): backend, slug,
// agent, services, started-at, status (STATUSES below).
// Reads no plan. The table is this tool's output, so it goes to stdout; --json prints an
// array of objects instead. Notes and warnings go to stderr.
//
//   bb-list
//   bb-list --json | jq -r '.[] | select(.backend=="docker") | .slug'
//   bb-list --all        # also the leftovers of dead bottles (what bb-cleanup would remove)
//
// Exit codes: see --help (0 ok, 2 usage, 1 a backend could not be asked: the rest is listed).
import { createProgram, mainOf, setExitCode, writeStdout } from "../../lib/cli.ts";
import { EXIT } from "../../lib/errors.ts";
import { FILTER_LABEL_HELP, collectLabel } from "../../lib/inventory/flags.ts";
import { listRow, listTable } from "../../lib/inventory/format.ts";
import { scan } from "../../lib/inventory/scan.ts";
import { log } from "../../lib/log.ts";
import { stateRootFrom } from "../../lib/paths.ts";

interface Options {
  json?: boolean;
  all?: boolean;
  stateDir?: string;
  filterLabel?: Record<string, string>;
}

const STATUSES = `Status:
  running    its agent runs
  starting   its start flow is building it (or, for a minute, resources of a hand-run pipe)
  prepared   bb-prepare ran and nothing was started (listed for a minute, then an orphan)
  kept       kept for you (keep=true) and not running: just start slug=S resumes it
  elsewhere  another state root's bottle (its resources name that root)
  orphan     a dead bottle's leftovers, with --all (what bb-cleanup removes)
`;

const program = createProgram("bb-list", "List live bottles across every available backend (a table, or --json).", {
  example: "bb-list --json | jq -r '.[].slug'",
  docker: true,
})
  .addHelpText("after", STATUSES)
  .option("--json", "print a JSON array of bottles on stdout instead of the table")
  .option("--all", "also list dead bottles' leftovers (status orphan)")
  .option("--state-dir <dir>", "state root for all bottles (default: $BB_STATE_DIR, else $XDG_STATE_HOME/bot-bottle)")
  .option("--filter-label <key=value>", FILTER_LABEL_HELP, collectLabel)
  .action(async (o: Options) => {
    const s = await scan({ stateRoot: stateRootFrom(o.stateDir), scope: o.filterLabel });
    // A backend that could not be asked may hide bottles: list the rest, then exit 1.
    for (const e of s.errors) log.warn(`${e.backend}: ${e.message}`);
    if (s.errors.length) setExitCode(program, EXIT.failure);
    const rows = s.bottles.filter((b) => o.all || b.live).map(listRow);
    if (o.json) await writeStdout(JSON.stringify(rows, null, 2) + "\n");
    else if (rows.length === 0) {
      const none = o.all ? "no bottles and no leftovers" : "no live bottles";
      // A backend that could not be asked may hold some: say so rather than "none".
      log.info(s.errors.length ? `${none} found by the backends that answered (${[...new Set(s.errors.map((e) => e.backend))].join(", ")} did not)` : none);
    }
    else await writeStdout(listTable(rows, { all: o.all }));
  });

await mainOf(program);
