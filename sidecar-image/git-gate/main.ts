// git-gate: serves the bottle's declared repos to the agent over git:// (port 9418).
// Fetches come from a local mirror synced from the real upstream with an identity only
// the gate holds; pushes land in the gate, where the pre-receive hook bb-prepare wrote
// (--hooks) calls back into this program (`git-gate hook pre-receive`) to enforce the
// push policy and forward to upstream. Undeclared repos get a git ERR naming them.
// Reads: --config FILE (GitGateConfig, lib/sidecar-config.ts), identities in
// --identities DIR or from the environment (--identities-env PREFIX: identities.ts),
// BB_SENSITIVE_<n> env for DLP. Writes: mirrors under --data DIR,
// logs on stderr.
// Exit codes: 0 after SIGTERM/SIGINT, 1 failure, 2 usage; `hook` exits 1 to refuse a push.
//   git-gate --config /etc/bot-bottle/git-gate.json --hooks /etc/bot-bottle/git-gate-hooks --data /var/lib/git-gate
import { resolve } from "node:path";
import process from "node:process";
import { createProgram, mainOf, setExitCode, wholeNumber } from "../../lib/cli.ts";
import { BbError } from "../../lib/errors.ts";
import { createLogger } from "../../lib/log.ts";
import { formatArgv } from "../../lib/proc.ts";
import { GitGateConfig, readConfig } from "../../lib/sidecar-config.ts";
import { listen, parseHostPort, untilTerminated } from "../../lib/daemon.ts";
import { agentKeyFromEnv } from "../../lib/http/agent-key.ts";
import { agentNetworkOnly } from "../../lib/http/agent-network.ts";
import { runPreReceiveHook } from "./hook.ts";
import { identitiesFromEnv } from "./identities.ts";
import { createGitGate, MAX_SESSIONS, TURN_WAIT_MS } from "./server.ts";

interface Flags {
  listen: string;
  config?: string;
  data?: string;
  hooks?: string;
  identities?: string;
  identitiesEnv?: string;
  maxSessions: number;
  idleTimeout: number;
  turnWait: number;
  agentNetworkOnly?: boolean;
  requireAgentKey?: boolean;
}

const log = createLogger({ prefix: "git-gate: " });

/**
 * This program's own command line, for the hook to call back: node plus its flags (the
 * tsx loader when run from source, nothing for dist/sidecar/git-gate.js) plus the
 * script. The hook runs in the repo dir, so relative paths are made absolute.
 */
function selfCommand(): string {
  const abs = (a: string) => (a.startsWith("./") || a.startsWith("../") ? resolve(a) : a);
  return formatArgv([process.execPath, ...process.execArgv.map(abs), resolve(process.argv[1]!)]);
}

async function serve(flags: Flags): Promise<void> {
  if (!flags.config) throw new BbError("USAGE", "--config FILE is required");
  if (!flags.data) throw new BbError("USAGE", "--data DIR is required");
  const at = parseHostPort(flags.listen, "--listen");
  if (flags.identities && flags.identitiesEnv) throw new BbError("USAGE", "--identities and --identities-env are two sources of one folder: give one");
  const configPath = resolve(flags.config);
  const config = await readConfig(GitGateConfig, configPath);
  const fromEnv = flags.identitiesEnv ? identitiesFromEnv(flags.identitiesEnv, process.env) : null;
  try {
    const gate = createGitGate({
      config,
      configPath,
      dirs: { data: resolve(flags.data), identities: fromEnv?.dir ?? (flags.identities ? resolve(flags.identities) : null) },
      hooksDir: flags.hooks ? resolve(flags.hooks) : null,
      hookCommand: selfCommand(),
      log,
      maxSessions: flags.maxSessions,
      idleTimeoutMs: flags.idleTimeout * 1000,
      turnWaitMs: flags.turnWait * 1000,
      agentKey: flags.requireAgentKey ? agentKeyFromEnv() : undefined,
    });
    if (!flags.hooks) log.warn("no --hooks dir: every push will be refused");
    if (flags.agentNetworkOnly) agentNetworkOnly(gate.server, "git-gate", log);
    const bound = await listen(gate.server, at);
    log.info(`listening on ${bound} (${gate.registry.repos.size} repo(s))`);
    await untilTerminated(() => gate.close());
  } finally {
    fromEnv?.remove();
  }
}

const program = createProgram("git-gate", "Serve the bottle's declared git repos; enforce the push policy before forwarding upstream.", {
  example: "git-gate --config git-gate.json --hooks hooks/ --data /var/lib/git-gate --identities /run/bot-bottle/identities",
  sidecar: true,
})
  .option("--listen <host:port>", "address to listen on", "0.0.0.0:9418")
  .option("--config <file>", "GitGateConfig JSON (required)")
  .option("--data <dir>", "where the mirrors live (required)")
  .option("--hooks <dir>", "hooks dir bb-prepare wrote (core.hooksPath for pushes); without it pushes are refused")
  .option("--identities <dir>", "dir holding the upstreams' identity files named in the config")
  .option("--identities-env <prefix>", "take the identities from the environment instead: variable <prefix><n> is identity-<n>, written to a folder only this uid may enter")
  .option("--max-sessions <n>", "git sessions served at once; one more is refused", wholeNumber("--max-sessions", 1), MAX_SESSIONS)
  .option("--idle-timeout <seconds>", "end a session that sends nothing either way for this long", wholeNumber("--idle-timeout", 1), 300)
  .option("--turn-wait <seconds>", "refuse a session still waiting this long for its turn at a repo's mirror (a push behind the push in progress)", wholeNumber("--turn-wait", 1), TURN_WAIT_MS / 1000)
  .option("--require-agent-key", "serve only clients that show the bottle's agent key from $BB_AGENT_KEY (the first segment of the repository path): for ports on host loopback, open to every local user")
  .option("--agent-network-only", "refuse connections on the egress network's side, the interface holding the default route, which the host reaches (docker backend: the agent's network has none)")
  .action((flags: Flags) => serve(flags));

program
  .command("hook")
  .description("run a git hook on behalf of git-gate (called by the hook scripts, not by people)")
  .argument("<name>", "hook name: pre-receive")
  .action(async (name: string) => {
    if (name !== "pre-receive") throw new BbError("USAGE", `unknown hook ${name}: only pre-receive is handled`);
    setExitCode(program, await runPreReceiveHook());
  });

await mainOf(program);
