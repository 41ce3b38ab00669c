// egress: the bundle's last hop. Listens on the bundle's loopback only (the agent cannot
// reach it); the firewall sends it what it has allowed and scanned:
//   - absolute-form requests "METHOD https://host[:port]/path HTTP/1.1": egress dials the
//     upstream over TLS (verifying its certificate) with keep-alive connections;
//   - absolute-form "http://..." requests: plain HTTP upstream;
//   - "CONNECT host:port": a raw byte tunnel (tls_passthrough hosts);
//   - WebSocket (any Upgrade) on either of the first two, piped both ways.
// For a routed host the agent's credential headers are dropped and the real one is added
// from the route's token slot (EGRESS_TOKEN_<n>) in this process's environment; an empty
// slot answers 502 naming the host and slot, and TRACE (which echoes the request, the
// credential with it) answers 405. Other hosts pass untouched.
// Reads: --routes FILE (EgressRoutes, lib/sidecar-config.ts), re-read on SIGHUP (a bad
// file keeps the old routes). Writes: logs on stderr, never a header value; a failed
// request's line once, then counts of its repeats (lib/log-limit.ts). An upstream that
// does not accept a connection within --connect-timeout, or sends no response head within
// --head-timeout of the request, is answered 504 naming it (lib/http/upstream-deadlines.ts).
// Exit codes: 0 after SIGTERM/SIGINT, 1 failure, 2 usage.
//   egress --listen 127.0.0.1:9099 --routes /etc/bot-bottle/egress-routes.json
import process from "node:process";
import { createProgram, mainOf } from "../../lib/cli.ts";
import { BbError } from "../../lib/errors.ts";
import { readRegularFile, refusedBecause } from "../../lib/read-regular.ts";
import { createLogger } from "../../lib/log.ts";
import { EgressRoutes, readConfig } from "../../lib/sidecar-config.ts";
import { listen, parseHostPort, parseResolveList, tuneGcForRelaying, untilTerminated } from "../../lib/daemon.ts";
import { addDeadlineOptions, deadlinesOf, type DeadlineFlags } from "../../lib/http/deadline-flags.ts";
import { createEgress } from "./server.ts";

tuneGcForRelaying();

interface Flags extends DeadlineFlags {
  listen: string;
  routes?: string;
  extraCa: string[];
  resolve: string[];
}

const log = createLogger({ prefix: "egress: " });
const collect = (v: string, acc: string[]) => [...acc, v];

async function readCa(files: string[]): Promise<string[]> {
  return Promise.all(
    files.map((f) =>
      // Never waited on: a FIFO there is refused at once.
      readRegularFile(f).catch((e: Error) => {
        throw new BbError("CONFIG", `Cannot read --extra-ca ${f}: ${refusedBecause(e) ?? e.message}`, { cause: e });
      }),
    ),
  );
}

async function serve(flags: Flags): Promise<void> {
  const at = parseHostPort(flags.listen, "--listen");
  const load = () => (flags.routes ? readConfig(EgressRoutes, flags.routes) : Promise.resolve<EgressRoutes>({ version: 1, routes: [] }));
  const egress = createEgress({
    routes: await load(),
    extraCa: await readCa(flags.extraCa),
    resolve: parseResolveList(flags.resolve),
    deadlines: deadlinesOf(flags),
    log,
  });
  // Every answer to a reload is an info line, as the firewall's are: under an agent's flood
  // the log leaves out warnings and errors (lib/log.ts), and the answer must not go with them.
  process.on("SIGHUP", () => {
    if (!flags.routes) return log.info("SIGHUP: no --routes file to reload");
    // setRoutes() throws on a table it refuses (a host twice): a bad file like any other.
    load()
      .then((r) => {
        egress.setRoutes(r);
        log.info(`routes reloaded from ${flags.routes}: ${r.routes.length} route(s)`);
      })
      .catch((e: Error) => log.info(`routes reload failed, keeping the previous routes: ${e.message}`));
  });
  const bound = await listen(egress.server, at);
  log.info(`listening on ${bound}`);
  await untilTerminated(() => egress.close());
}

const program = createProgram("egress", "Inject route credentials and dial upstreams for the firewall (bundle loopback only).", {
  example: "egress --listen 127.0.0.1:9099 --routes /etc/bot-bottle/egress-routes.json",
  sidecar: true,
})
  .option("--listen <host:port>", "address to listen on (keep it on loopback)", "127.0.0.1:9099")
  .option("--routes <file>", "EgressRoutes JSON; re-read on SIGHUP (without it every host passes untouched)")
  .option("--extra-ca <file>", "PEM CA to trust for upstream TLS besides the system store (repeatable)", collect, [])
  .option("--resolve <host=ip:port>", "dial HOST at IP:PORT instead of resolving it (repeatable; tests)", collect, []);
addDeadlineOptions(program).action((flags: Flags) => serve(flags));

await mainOf(program);
