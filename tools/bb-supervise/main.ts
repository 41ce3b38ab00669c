// bb-supervise: the operator's side of a bottle's supervise queue. Lists what the agent
// asked for, approves a host (adds it to the bottle's firewall policy and has the running
// firewall re-read it: docker kill --signal HUP <bundle>), denies a request with a reason, or
// answers a question; `blocked` shows what the firewall refused. Approve grants a request
// only as it was first shown (by list, or by approve itself): one whose file changed since
// is refused. Reads the plan bb-prepare saved (--slug), --plan FILE or stdin; writes the
// list (table, or JSON with --json) to stdout and everything else to stderr.
//
//   bb-supervise --slug researcher-k3x9 list
//   bb-supervise --slug researcher-k3x9 approve 3fa2c1b9
//   bb-supervise --slug researcher-k3x9 blocked --json | jq -r '.entries[].host'
import { blockedRecordPath, readBlockedRecord } from "../../lib/blocked-record.ts";
import { createProgram, mainOf, writeStdout, type Command } from "../../lib/cli.ts";
import { names } from "../../lib/layout.ts";
import { BbError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { locatePlan, type LocateOptions } from "../../lib/plan/locate.ts";
import { approveContext } from "../../lib/supervise/bottle.ts";
import { answerRequest, approveRequest, changedText, denyRequest, showRequests } from "../../lib/supervise/decide.ts";
import { asked } from "../../lib/supervise/queue.ts";
import { emptyRecord, formatBlockedJson, formatBlockedTable, othersText } from "./blocked.ts";
import { formatJson, formatTable } from "./table.ts";

async function context(cmd: Command) {
  return approveContext(await locatePlan(cmd.optsWithGlobals<LocateOptions>()));
}

const program = createProgram("bb-supervise", "Decide what a bottle's agent asked the operator for.", {
  readsPlan: true,
  docker: true,
  example: "bb-supervise --slug researcher-k3x9 list; bb-supervise --slug researcher-k3x9 approve 3fa2c1b9",
})
  .option("--slug <slug>", "the bottle (its plan is <state dir>/bottles/<slug>/plan.json)")
  .option("--state-dir <dir>", "state root (default $BB_STATE_DIR, else $XDG_STATE_HOME/bot-bottle)");

program
  .command("list")
  .description("show pending requests (--all: decided ones too)")
  .option("--all", "include approved and denied requests")
  .option("--json", "print the requests as a JSON array (status as the table says it: an answered question is \"answered\")")
  .action(async (opts: { all?: boolean; json?: boolean }, cmd: Command) => {
    const ctx = await context(cmd);
    const { requests, changed } = await showRequests(ctx, opts);
    for (const c of changed) log.warn(changedText(ctx, c));
    await writeStdout(opts.json ? formatJson(requests) : formatTable(requests));
  });

program
  .command("approve <id>")
  .description("allow the requested host as list showed it (a request changed since is refused): add it to the firewall policy, which the running firewall re-reads (open connections stay)")
  .action(async (id: string, _opts: unknown, cmd: Command) => {
    const { request, policyChanged } = await approveRequest(await context(cmd), id);
    log.info(`approved ${request.id}: ${asked(request)}${policyChanged ? " added to the firewall policy" : " was already in the firewall policy"}`);
  });

program
  .command("deny <id> [reason...]")
  .description("refuse a request; the agent is told the reason (the words after the id, or --reason)")
  .option("--reason <text>", "why (the agent sees it)")
  .action(async (id: string, words: string[], opts: { reason?: string }, cmd: Command) => {
    if (opts.reason !== undefined && words.length) throw new BbError("USAGE", "Give the reason once: as the words after the id, or as --reason TEXT");
    const request = await denyRequest(await context(cmd), id, opts.reason ?? (words.length ? words.join(" ") : null));
    log.info(`denied ${request.id}`);
  });

program
  .command("answer <id> <text...>")
  .description("answer a question from the agent")
  .action(async (id: string, text: string[], _opts: unknown, cmd: Command) => {
    const request = await answerRequest(await context(cmd), id, text.join(" "));
    log.info(`answered ${request.id}`);
  });

program
  .command("blocked")
  .description("show what the firewall refused: host, rule, count, first and last seen (the first 400 hosts and 100 DLP and other findings stay, whatever follows; the bundle log rotates)")
  .option("--json", "print the whole record as JSON (entries, and others: refusals counted once the record was full)")
  .addHelpText(
    "after",
    "\nTo allow a refused host: the agent asks for it through supervise (its tool\nrequest_host_access) and you `bb-supervise approve ID`; or add it to allow_hosts in the\nbottle's manifest and start the bottle again. Approve only hosts you know.\n",
  )
  .action(async (opts: { json?: boolean }, cmd: Command) => {
    const plan = await locatePlan(cmd.optsWithGlobals<LocateOptions>());
    const record = (await readBlockedRecord(blockedRecordPath(plan.files.dir))) ?? emptyRecord();
    const others = othersText(record, plan.bundle?.container ?? names.bundle(plan.slug));
    if (others) log.warn(others);
    await writeStdout(opts.json ? formatBlockedJson(record) : formatBlockedTable(record));
  });

await mainOf(program);
