// bb firewall daemon: the agent's only proxy (HTTP and CONNECT, port 8888). Allows only
// the policy's hosts, intercepts TLS with the bottle CA to scan every request with the DLP
// detectors, tunnels tlsPassthrough hosts undecrypted, and forwards to egress (--next-hop)
// in absolute form. Reads the FirewallPolicy file and the CA files; sensitive values come
// from the env slots the policy names. SIGHUP or SIGUSR1 re-reads the policy live (a bad
// one is refused and the old one kept). Logs to stderr only: the first refusal of each host
// and rule, then counts of the rest, at a rate the log can take (blocked-log.ts), and so
// its other lines the agent can cause (an allowed host that is down, lib/log-limit.ts); with
// --blocked-record it also keeps a bounded summary of them in that file, which outlives the
// container and its rotated log (blocked.ts). Without --next-hop, an upstream that does
// not accept a connection (and finish TLS) within --connect-timeout, or sends no response
// head within --head-timeout of the request, is answered 504 naming it
// (lib/http/upstream-deadlines.ts); with one, egress times upstreams and answers so itself,
// and the firewall, dialing egress within --connect-timeout, waits for egress's answer as
// long as egress's own deadlines (the same flags, the same defaults) plus 5 s, then answers
// 504 naming the next hop: an egress that took a request and hung held the agent for good.
// Request bodies and WebSocket messages held for scanning take from one budget
// (--body-budget, body-budget.ts): a request past it is answered 503 with Retry-After, a
// WebSocket closed with 1013; neither is forwarded unscanned.
// Exit codes: 0 stopped, 1 failure (bad policy or CA at startup, port in use), 2 usage.
//
//   firewall --policy firewall.json --ca-cert ca.pem --ca-key ca-key.pem --next-hop 127.0.0.1:9099
import process from "node:process";
import { createProgram, mainOf, Option, wholeNumber } from "../../lib/cli.ts";
import { BbError } from "../../lib/errors.ts";
import { readRegularFile, refusedBecause } from "../../lib/read-regular.ts";
import { log as rootLog } from "../../lib/log.ts";
import { parseHostPort, parseResolveList, tuneGcForRelaying, untilTerminated } from "../../lib/daemon.ts";
import { agentKeyFromEnv } from "../../lib/http/agent-key.ts";
import { agentNetworkOnly } from "../../lib/http/agent-network.ts";
import { addDeadlineOptions, deadlinesOf, type DeadlineFlags } from "../../lib/http/deadline-flags.ts";
import { FirewallPolicy, readConfig } from "../../lib/sidecar-config.ts";
import { openBlockedRecord } from "./blocked.ts";
import { BODY_BUDGET_BYTES } from "./body-budget.ts";
import { createFirewall } from "./firewall.ts";

tuneGcForRelaying();

const log = rootLog.child("firewall");

/** The file a flag names, never waited on: a FIFO there is refused at once, naming both. */
async function readText(path: string, flag: string): Promise<string> {
  try {
    return await readRegularFile(path);
  } catch (e) {
    throw new BbError("CONFIG", `Cannot read ${flag} ${path}: ${refusedBecause(e) ?? (e as Error).message}`, { cause: e });
  }
}

/** The CA key from exactly one of --ca-key and --ca-key-env. The variable is then taken out
 * of the environment, so nothing the firewall starts later inherits it. */
async function caKeyPem(o: { caKey?: string; caKeyEnv?: string }): Promise<string> {
  if ((o.caKey === undefined) === (o.caKeyEnv === undefined)) throw new BbError("USAGE", "give the CA key with exactly one of --ca-key <file> and --ca-key-env <name>");
  if (o.caKey !== undefined) return readText(o.caKey, "--ca-key");
  const pem = process.env[o.caKeyEnv!];
  delete process.env[o.caKeyEnv!];
  if (!pem) throw new BbError("CONFIG", `Cannot read the CA key: $${o.caKeyEnv} (--ca-key-env) is not set or empty`);
  return pem;
}

const collect = (value: string, previous: string[]) => [...previous, value];

interface Flags extends DeadlineFlags {
  listen: string;
  policy: string;
  caCert: string;
  caKey?: string;
  caKeyEnv?: string;
  nextHop?: string;
  upstreamCa: string[];
  resolve: string[];
  agentNetworkOnly?: boolean;
  requireAgentKey?: boolean;
  blockedRecord?: string;
  bodyBudget: number;
}

const program = createProgram("firewall", "The bottle's allowlisting, DLP-scanning HTTP(S) proxy (a sidecar daemon).", {
  example: "firewall --policy firewall.json --ca-cert ca.pem --ca-key ca-key.pem --next-hop 127.0.0.1:9099",
  sidecar: true,
})
  .option("--listen <host:port>", "address to listen on", "0.0.0.0:8888")
  .requiredOption("--policy <file>", "FirewallPolicy JSON (re-read on SIGHUP or SIGUSR1)")
  .requiredOption("--ca-cert <file>", "bottle CA certificate (PEM) used to intercept TLS")
  .option("--ca-key <file>", "bottle CA private key (PEM)")
  .option("--ca-key-env <name>", "read the CA private key (PEM) from this environment variable instead (the bundle: init hands it to the firewall alone)")
  .option("--next-hop <host:port>", "egress; when omitted the firewall dials upstreams itself")
  .option("--upstream-ca <file>", "extra CA to trust when dialing upstreams directly (repeatable)", collect, [])
  .option("--resolve <host=ip:port>", "dial IP:PORT for HOST when dialing directly (repeatable)", collect, [])
  .option("--require-agent-key", "serve only clients that show the bottle's agent key from $BB_AGENT_KEY (proxy password; as the proxy password): for ports on host loopback, open to every local user")
  .option("--blocked-record <file>", "keep a summary of refused requests in this file (host, rule, count, first and last seen), rewritten at most once a second")
  .option("--agent-network-only", "refuse connections on the egress network's side, the interface holding the default route, which the host reaches (docker backend: the agent's network has none)")
  .addOption(
    new Option("--body-budget <MiB>", "request bodies and WebSocket messages held for scanning at once, across every connection, decoded forms included; a request past it is answered 503 with Retry-After, a WebSocket closed with 1013")
      .argParser(wholeNumber("--body-budget", 1))
      .default(BODY_BUDGET_BYTES / 1048576),
  );
addDeadlineOptions(program, " (with --next-hop egress times upstreams, given the same flags, and the firewall waits for its answer that long plus 5 s; its dial to egress takes --connect-timeout)")
  .action(async (o: Flags) => {
    const caKey = await caKeyPem(o);
    const listen = parseHostPort(o.listen, "--listen");
    const nextHop = o.nextHop ? parseHostPort(o.nextHop, "--next-hop") : undefined;
    const resolve = parseResolveList(o.resolve);
    const policy = await readConfig(FirewallPolicy, o.policy);
    const record = o.blockedRecord ? await openBlockedRecord(o.blockedRecord, { log }) : undefined;
    const firewall = createFirewall({
      policy,
      ca: { certPem: await readText(o.caCert, "--ca-cert"), keyPem: caKey },
      nextHop,
      upstreamCa: await Promise.all(o.upstreamCa.map((f) => readText(f, "--upstream-ca"))),
      resolve,
      deadlines: deadlinesOf(o),
      log,
      agentKey: o.requireAgentKey ? agentKeyFromEnv() : undefined,
      onBlocked: record?.add,
      bodyBudgetBytes: o.bodyBudget * 1048576,
    });
    if (o.agentNetworkOnly) agentNetworkOnly(firewall.server, "firewall", log);
    const addr = await firewall.listen(listen.port, listen.host);
    const via = nextHop ? `next hop ${nextHop.host}:${nextHop.port}` : "dialing upstreams directly";
    log.info(`listening on ${addr.address}:${addr.port} (${policy.hosts.length} hosts, ${via})`);

    // In the bundle init sends SIGHUP (and restarts the firewall on its own SIGUSR1).
    const reload = () =>
      readConfig(FirewallPolicy, o.policy)
        .then((next) => {
          firewall.setPolicy(next);
          log.info(`policy reloaded from ${o.policy} (${next.hosts.length} hosts)`);
        })
        // Info, as the answer above: both are what bb-supervise approve waits for, and under an
        // agent's flood of refusals the log leaves out warnings and errors (lib/log.ts).
        .catch((e) => log.info(`policy reload refused, keeping the previous policy: ${(e as Error).message}`));
    process.on("SIGHUP", reload);
    process.on("SIGUSR1", reload);
    await untilTerminated(async () => {
      await firewall.close();
      await record?.close();
    });
  });

await mainOf(program);
