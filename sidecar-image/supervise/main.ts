// supervise: the MCP server (streamable HTTP, POST/GET/DELETE /mcp) the agent calls to
// ask the operator for a host (request_host_access) or anything else (ask_operator),
// and to look an earlier request up (check_request). Requests are files in --queue;
// the operator decides them with bb-supervise on the host.
//
// It answers only requests whose Host is a name the agent uses (--allowed-host, and the
// --listen address unless that is a wildcard), and none with an Origin (server.ts).
//
// Exit codes: 0 after SIGTERM/SIGINT, 2 bad flags, 1 anything else.
//
//   supervise --listen 0.0.0.0:9100 --queue /bb/supervise/queue --slug researcher-k3x9 --allowed-host supervise
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { createServer } from "node:http";
import process from "node:process";
import { createProgram, mainOf } from "../../lib/cli.ts";
import { BbError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { createRequestBook } from "./requests.ts";
import { createSuperviseHandler, MAX_CONNECTIONS, MCP_PATH } from "./server.ts";
import { parseHostPort } from "../../lib/daemon.ts";
import { agentKeyFromEnv } from "../../lib/http/agent-key.ts";
import { agentNetworkOnly } from "../../lib/http/agent-network.ts";
import { waitForListener } from "./net.ts";

interface Flags {
  listen: string;
  queue: string;
  slug: string;
  wait: string;
  poll: string;
  firewall?: string;
  allowedHost: string[];
  agentNetworkOnly?: boolean;
  requireAgentKey?: boolean;
}

const collect = (v: string, acc: string[]) => [...acc, v];
const WILDCARD_ADDRESSES = new Set(["0.0.0.0", "::", "[::]"]);

function positiveNumber(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new BbError("USAGE", `${flag} wants a number, got ${JSON.stringify(text)}`);
  return n;
}

async function serve(flags: Flags): Promise<void> {
  const listen = parseHostPort(flags.listen, "--listen");
  const firewall = flags.firewall ? parseHostPort(flags.firewall, "--firewall") : undefined;
  try {
    await access(flags.queue, constants.W_OK);
  } catch (e) {
    throw new BbError("CONFIG", `Cannot use supervise queue ${flags.queue}: ${(e as Error).message} (bb-bundle mounts it from the bottle's state dir)`, { cause: e });
  }
  const book = createRequestBook({
    queueDir: flags.queue,
    waitMs: positiveNumber(flags.wait, "--wait") * 1000,
    pollMs: positiveNumber(flags.poll, "--poll"),
    // The host has the firewall re-read its policy before marking a request approved; if
    // the firewall was restarted instead (init's SIGUSR1) it may still be binding its port,
    // so hold the answer until it accepts connections.
    afterHostApproved: firewall
      ? async () => {
          if (!(await waitForListener(firewall, 5000))) log.warn(`firewall at ${flags.firewall} did not come back within 5s`);
        }
      : undefined,
  });
  const allowedHosts = [...(flags.allowedHost.length ? flags.allowedHost : ["supervise"]), ...(WILDCARD_ADDRESSES.has(listen.host) ? [] : [listen.host])];
  const agentKey = flags.requireAgentKey ? agentKeyFromEnv() : undefined;
  const supervise = createSuperviseHandler({ slug: flags.slug, book, allowedHosts, agentKey });
  const server = createServer(supervise.handler);
  // What a client that opens connections and never finishes a request can hold: a
  // connection past the cap is closed unanswered (server.ts caps requests with a 503).
  server.maxConnections = MAX_CONNECTIONS;
  if (flags.agentNetworkOnly) agentNetworkOnly(server, "supervise", log);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) => reject(new BbError("CONFIG", `Cannot listen on ${flags.listen}: ${e.message}`, { cause: e })));
    server.listen(listen.port, listen.host, resolve);
  });
  const bound = server.address();
  const port = typeof bound === "object" && bound ? bound.port : listen.port;
  log.info(`listening on http://${listen.host}:${port}${agentKey ? "/<agent key>" : ""}${MCP_PATH} (bottle ${flags.slug}, queue ${flags.queue}, Host ${allowedHosts.join(" or ")})`);

  const sig = await new Promise<string>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  log.info(`${sig}: closing ${supervise.sessionCount()} session(s)`);
  await supervise.close();
  // Sessions' SSE streams would otherwise hold server.close() open.
  server.closeAllConnections?.();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  log.info("stopped");
}

const program = createProgram("supervise", "MCP server the agent uses to ask the operator for hosts and answers.", {
  example: "supervise --listen 127.0.0.1:9100 --queue /tmp/queue --slug demo",
  sidecar: true,
})
  .option("--listen <host:port>", "address to listen on", "0.0.0.0:9100")
  .requiredOption("--queue <dir>", "the bottle's supervise queue dir (request files)")
  .option("--slug <slug>", "the bottle's slug (shown to the agent)", process.env.BB_SLUG ?? "bottle")
  .option("--wait <seconds>", "how long a tool call waits for the operator before answering pending (below the usual 60s client timeout)", "50")
  .option("--poll <ms>", "how often the requests that calls wait on are re-read (one read each, however many calls wait)", "500")
  .option("--firewall <host:port>", "after an approval, wait until the firewall accepts connections again before telling the agent")
  .option("--require-agent-key", "serve only clients that show the bottle's agent key from $BB_AGENT_KEY (the MCP endpoint is /KEY/mcp): for ports on host loopback, open to every local user")
  .option("--agent-network-only", "refuse connections on the egress network's side, the interface holding the default route, which the host reaches (docker backend: the agent's network has none)")
  .option("--allowed-host <name>", "a Host name (no port) the agent reaches supervise by, repeatable; any other is refused (default: supervise; the --listen address is allowed too unless it is a wildcard)", collect, [])
  .action((flags: Flags) => serve(flags));

await mainOf(program);
