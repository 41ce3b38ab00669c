// The firewall daemon as a library: an HTTP proxy server (absolute-form requests and
// CONNECT) that lets out only what the bottle's policy allows. CONNECT to a host that is
// not tlsPassthrough is intercepted: the firewall answers the TLS handshake with a leaf
// from the bottle CA, parses the HTTP/1.1 requests inside (keep-alive, many per
// connection, WebSocket upgrades), scans each one (URL, headers, body; every message the
// agent sends over a WebSocket) and forwards or blocks it. Passthrough hosts are gated by
// name and tunnelled without decryption. Responses stream back unscanned.
import { Buffer } from "node:buffer";
import http from "node:http";
import net from "node:net";
import { pipeline } from "node:stream";
import tls from "node:tls";
import { directSocket, relayDirect } from "../../lib/http/direct-body.ts";
import { endToEndHeaders, flat, pairs } from "../../lib/http/headers.ts";
import { MAX_HEADER_BYTES, RELAY_HIGH_WATER_MARK } from "../../lib/http/limits.ts";
import { replayable, retryOnFreshConnection } from "../../lib/http/retry.ts";
import { relayStatus } from "../../lib/http/status.ts";
import { abandonWithAgent, headText, holdEarlyBytes } from "../../lib/http/upgrade-answer.ts";
import { type Deadlines, isUpstreamTimeout, upstreamFailureStatus } from "../../lib/http/upstream-deadlines.ts";
import type { Finding } from "../../lib/dlp/mod.ts";
import type { FirewallPolicy } from "../../lib/sidecar-config.ts";
import { log as rootLog, type Logger } from "../../lib/log.ts";
import { readClientHello } from "../../lib/tls/client-hello.ts";
import { checkCa } from "../../lib/tls/ca-check.ts";
import { createLeafIssuer } from "../../lib/tls/issuer.ts";
import { type Block, inspectBody, inspectHead, MAX_BODY_BYTES, readBody, transferCoding } from "./inspect.ts";
import { createOffThreadScanner, OFF_THREAD_BYTES } from "./off-thread.ts";
import { type BodyCharge, createBodyBudget, overBudgetReason } from "./body-budget.ts";
import { compilePolicy, type CompiledPolicy, type HostRule } from "./policy.ts";
import { NO_AGENT_KEY, type Refusal } from "./blocked.ts";
import { createBlockedLog } from "./blocked-log.ts";
import { createAgentLines } from "../../lib/log-limit.ts";
import { OVER_BUDGET, relayWebSocket } from "./websocket.ts";
import { tunnelDeadlines, type Timeouts } from "./deadlines.ts";
import { answerClientErrors } from "./client-error.ts";
import { closingAnswer, isLingering, LINGER, type Linger, lingerAfterLastAnswer, lingeringClose } from "./linger.ts";
import { hasBody, parseAbsolute, parseAuthority, withoutHopByHop } from "./request-target.ts";
import { peek, pipeBoth, plainProtocol } from "./tunnel-bytes.ts";
import { type Answer, authority, createUpstream, type Endpoint, type Sent, type Target } from "./upstream.ts";
import { isAgentKey, proxyPassword } from "../../lib/http/agent-key.ts";

export interface FirewallOptions {
  policy: FirewallPolicy;
  /** The bottle CA the agent trusts; intercepted hosts get leaves signed by it. */
  ca: { certPem: string; keyPem: string };
  /** Where sensitive slot values are read from (default process.env). */
  env?: Record<string, string | undefined>;
  /** Egress. Without it the firewall dials upstreams itself. */
  nextHop?: Endpoint;
  /** Extra CAs to trust when dialing directly (tests). */
  upstreamCa?: string[];
  /** Host name -> address to dial instead (direct dialing only; tests). */
  resolve?: ReadonlyMap<string, Endpoint>;
  /** Serve only requests whose Proxy-Authorization carries this password (the bottle's
   * agent key, lib/http/agent-key.ts): the port is on host loopback, open to every user. */
  agentKey?: string;
  maxBodyBytes?: number;
  /** Bytes of request bodies and WebSocket messages held at once across every connection (body-budget.ts). */
  bodyBudgetBytes?: number;
  /** The scan worker's module (tests point it at one that cannot load). */
  scanWorker?: URL;
  /** Connection time limits (tests shorten them). */
  timeouts?: Partial<Timeouts>;
  /** How long a connection the firewall ends lingers for what the agent still sends (linger.ts; tests shorten it). */
  linger?: Partial<Linger>;
  /** How long an upstream the firewall dials itself may take to connect and to answer
   * (lib/http/upstream-deadlines.ts); with a next hop, egress keeps its own. */
  deadlines?: Partial<Deadlines>;
  log?: Logger;
  /** Told of every refusal (main.ts keeps the bottle's record of them, blocked.ts). */
  onBlocked?: (r: Refusal) => void;
}

export type { Timeouts };

export interface Firewall {
  server: http.Server;
  /** Swap in a policy for every later request; throws (keeping the old one) if it cannot compile. */
  setPolicy(policy: FirewallPolicy): void;
  /** Check the CA (fail fast) and listen. */
  listen(port: number, host: string): Promise<net.AddressInfo>;
  close(): Promise<void>;
}

interface Tunnel {
  host: string;
  port: number;
  scheme: Target["scheme"];
}

const NOT_ALLOWED = "host is not in this bottle's allowlist";
const ESTABLISHED = "HTTP/1.1 200 Connection Established\r\n\r\n";
const TLS_HANDSHAKE = 0x16;
/** Longer than clients keep idle connections, so a request never races a server-side close. */
const IDLE_MS = 65_000;
const TIMEOUTS: Timeouts = { idleMs: IDLE_MS, headersMs: IDLE_MS + 1000, requestMs: 300_000 };

export function createFirewall(opts: FirewallOptions): Firewall {
  const log = opts.log ?? rootLog.child("firewall");
  const env = opts.env;
  const maxBody = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  const budget = createBodyBudget(opts.bodyBudgetBytes);
  const blockedLog = createBlockedLog({ log });
  // What goes wrong per request of the agent's (an allowed host that is down, a tunnel that
  // cannot open): the first of each line, then counts (lib/log-limit.ts), as refusals are;
  // a host's failures take from its allowlist entry's share, so one wildcard's made-up
  // subdomains cannot use up the lines of every other host.
  const agentLines = createAgentLines({ log, what: "warnings about the agent's requests" });
  const issuer = createLeafIssuer({ caCertPem: opts.ca.certPem, caKeyPem: opts.ca.keyPem });
  const upstream = createUpstream({ nextHop: opts.nextHop, upstreamCa: opts.upstreamCa, resolve: opts.resolve, deadlines: opts.deadlines });
  const tunnels = new WeakMap<net.Socket, Tunnel>();
  const sockets = new Set<net.Socket>();
  const offThread = createOffThreadScanner(agentLines, opts.scanWorker);
  const linger: Linger = { ...LINGER, ...opts.linger };

  // Open WebSockets and passthrough tunnels: gated once, when they opened, so a reload
  // that takes their host away (a denied approval rolled back) must cut them. Requests in
  // intercepted tunnels are gated one by one and need no list.
  type Relay = { kind: string; host: string; port: number; passthrough?: true };
  const relays = new Map<net.Socket, Relay>();
  function track(socket: net.Socket, relay: Relay): void {
    relays.set(socket, relay);
    socket.on("close", () => relays.delete(socket));
  }

  let policy: CompiledPolicy;
  function setPolicy(p: FirewallPolicy): void {
    const next = compilePolicy(p, env);
    for (const w of next.warnings) log.warn(w);
    policy = next;
    for (const [socket, r] of relays) {
      const rule = next.ruleFor(r.host);
      if (rule && rule.ports.has(r.port) && (!r.passthrough || rule.tlsPassthrough)) continue;
      log.warn(`closed ${r.kind} to ${r.host}: the reloaded policy no longer allows it`);
      socket.destroy();
    }
  }
  setPolicy(opts.policy);

  /**
   * Gate a host name: its rule, or the block plus a label safe to log. The name is
   * scanned too: under a "*." rule (or on its way to being refused) the name itself can
   * carry data, and then it must not reach the log either. Names arrive lower-cased
   * (scanName).
   */
  function gate(p: CompiledPolicy, host: string, port: number): { rule: HostRule } | { block: Block; label: string } {
    const f = p.scanner.scanName(host);
    if (f) return { block: { status: 403, reason: `detector ${f.detector} matched in host name (${f.label}: ${f.excerpt})` }, label: "(redacted host name)" };
    const rule = p.ruleFor(host);
    if (!rule) return { block: { status: 403, reason: NOT_ALLOWED }, label: host };
    if (!rule.ports.has(port)) {
      const allowed = [...rule.ports].join(", ");
      return { block: { status: 403, reason: `port ${port} is not allowed for ${rule.pattern} (allowed: ${allowed}; a bottle lists others in allow_hosts ports)` }, label: host };
    }
    return { rule };
  }

  /** Log a refusal (its key's first, the rest counted: blocked-log.ts) and hand it to the
   * record, which a log flood cannot rotate away. */
  function refused(r: Refusal, line = `blocked ${r.what} ${r.host}: ${r.reason}`): void {
    blockedLog.add(r, line);
    opts.onBlocked?.(r);
  }

  function blockText(host: string, block: Block): string {
    return `bot-bottle firewall: blocked request to ${host}: ${block.reason}\n`;
  }

  /** Answer a blocked request. Its unread body is drained so the connection stays usable
   * (`close` instead when the body is too large to be worth reading). `under` is the
   * allowlist entry that let the host through, when what was sent is refused. */
  function deny(req: http.IncomingMessage, res: http.ServerResponse, host: string, block: Block, o: { under?: string; close?: boolean } = {}): void {
    if (block.retryAfterS !== undefined) return busy(req, res, host, block, o);
    refused({ what: req.method ?? "GET", host, reason: block.reason, under: o.under });
    if (!req.readableEnded) req.resume();
    const body = blockText(host, block);
    res.writeHead(block.status, {
      "content-type": "text/plain; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "x-bot-bottle-firewall": "blocked",
      ...(o.close ? { connection: "close" } : {}),
    });
    res.end(body);
  }

  /** Answer a request the firewall has no room to scan now (body-budget.ts): 503 with
   * Retry-After. The policy refused nothing, so it is neither labelled blocked nor recorded
   * as a refusal (for bb-supervise blocked to offer); it is logged as the agent's lines are. */
  function busy(req: http.IncomingMessage, res: http.ServerResponse, host: string, block: Block, o: { under?: string; close?: boolean }): void {
    agentLines.warn(`request to ${host} answered 503: ${block.reason}`, `over budget ${host}`, o.under);
    if (!req.readableEnded) req.resume();
    const body = `bot-bottle firewall: cannot take the request to ${host} now: ${block.reason}\n`;
    res.writeHead(503, {
      "content-type": "text/plain; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "retry-after": String(block.retryAfterS),
      ...(o.close ? { connection: "close" } : {}),
    });
    res.end(body);
  }

  /** Give `charge` back once the request is done with: answered (forwarded or refused), or
   * its connection gone, whichever comes first. The connection's close covers a request
   * whose answer never got the socket (one pipelined behind another). */
  function heldUntilDone(req: http.IncomingMessage, res: http.ServerResponse, charge: BodyCharge): void {
    const socket = req.socket;
    const done = () => {
      charge.release();
      res.off("close", done);
      socket.off("close", done);
    };
    res.once("close", done);
    socket.once("close", done);
  }

  /** The body of the answer to a request whose upstream failed (its status: upstreamFailureStatus):
   * a deadline's TIMEOUT names the upstream and what it did not do in time. */
  function upstreamFailureText(failed: string, e: Error): string {
    return isUpstreamTimeout(e) ? `bot-bottle firewall: ${e.message}\n` : `bot-bottle firewall: ${failed}: ${e.message}\n`;
  }

  /** A request (plain or upgrade) whose upstream failed before answering: logged from the
   * share of the allowlist entry `under`, and what to answer the agent. */
  function upstreamFailed(host: string, e: Error, under: string): { status: number; text: string } {
    agentLines.warn(`upstream ${host}: ${e.message}`, undefined, under);
    return { status: upstreamFailureStatus(e), text: upstreamFailureText(`cannot reach ${host}`, e) };
  }

  /** An answer whose head cannot be relayed (`why`): logged, and the text of the 502 instead. */
  function cannotRelay(host: string, why: string, under: string): string {
    agentLines.warn(`upstream ${host}: ${why}`, undefined, under);
    return `bot-bottle firewall: ${host} sent an answer the firewall cannot relay: ${why}\n`;
  }

  /** A complete response written straight to a socket (CONNECT and upgrade paths), the
   * last on it: it then lingers (linger.ts), what the agent sends after its request read
   * and dropped, so the end of its side is seen and the socket let go. Only a
   * refusal (denyRaw) says `x-bot-bottle-firewall: blocked`, as only deny's do on the plain
   * path: an upstream that failed or timed out, or a request the firewall cannot parse,
   * blocked nothing, and the agent (or its operator) must not go asking for an approval. */
  function rawResponse(socket: net.Socket, status: number, body: string, o: { blocked?: true } = {}): void {
    lingeringClose(socket, linger, { answer: closingAnswer(status, body, o.blocked ? "x-bot-bottle-firewall: blocked\r\n" : "") });
  }

  function denyRaw(socket: net.Socket, method: string, host: string, block: Block, under?: string): void {
    refused({ what: method, host, reason: block.reason, under });
    rawResponse(socket, block.status, blockText(host, block), { blocked: true });
  }

  function outgoingHeaders(req: http.IncomingMessage, target: Target): http.OutgoingHttpHeaders {
    const headers = withoutHopByHop(req.headers);
    // The Host header always names the host the policy allowed, so a tunnel to an allowed
    // host cannot front for another one behind the same server.
    headers.host = authority(target.host, target.port, target.scheme === "https" ? 443 : 80);
    return headers;
  }


  /** Forward a request; one that fails on the way (the agent hung up mid-body, say) is
   * logged from the share of the allowlist entry the gate let its host through under. */
  function forwardOrFail(req: http.IncomingMessage, res: http.ServerResponse, target: Target & { path: string }): void {
    const gated: { under?: string } = {};
    forward(req, res, target, gated).catch((e) => {
      agentLines.error(`request to ${target.host} failed: ${(e as Error).message}`, undefined, gated.under);
      res.destroy();
    });
  }

  /** `gated.under` is set to the allowlist entry once the gate has let the host through. */
  async function forward(req: http.IncomingMessage, res: http.ServerResponse, target: Target & { path: string }, gated: { under?: string }): Promise<void> {
    const p = policy; // one policy for the whole request, even if a reload lands meanwhile
    const method = req.method ?? "GET";
    const g = gate(p, target.host, target.port);
    if ("block" in g) return deny(req, res, g.label, g.block);
    const headers = outgoingHeaders(req, target);
    const url = `${target.scheme}://${headers.host}${target.path}`;
    const under = (gated.under = g.rule.pattern);
    const headBlock = inspectHead(p, url, headers, g.rule.replacedHeaders);
    if (headBlock) return deny(req, res, target.host, headBlock, { under });

    let body: Buffer | undefined;
    if (hasBody(req)) {
      const coded = transferCoding(req.headers);
      if (coded) return deny(req, res, target.host, coded, { under, close: true });
      // Held (and charged) until the answer is done: the body goes again should its pooled
      // connection turn out closed under it, so it lives as long as the exchange.
      const charge = budget.charge();
      heldUntilDone(req, res, charge);
      const read = await readBody(req, maxBody, charge);
      if (!Buffer.isBuffer(read)) return deny(req, res, target.host, read, { under, close: true });
      const bodyBlock = await inspectBody(p, read, req.headers, { offThread, budget });
      if (bodyBlock) return deny(req, res, target.host, bodyBlock, { under });
      body = read;
      headers["content-length"] = body.length;
    }

    const onResponse = (answer: Answer) => {
      const status = relayStatus(answer.status);
      try {
        if (!status) throw new Error(`status ${answer.status} is not a valid HTTP status`);
        // Framing is this hop's own: node frames the body anew towards the agent.
        res.writeHead(status.code, status.phrase, flat(endToEndHeaders(answer.rawHeaders, ["transfer-encoding"])));
      } catch (e) {
        // A throw here would end the daemon and every tunnel it holds; only this answer fails.
        answer.body.destroy();
        const text = cannotRelay(target.host, (e as Error).message, under);
        res.writeHead(502, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      const socket = directSocket(res, answer);
      if (socket) relayDirect(res, socket, answer.body);
      else answer.body.pipe(res);
      answer.body.on("error", () => res.destroy());
    };
    // The body is held whole, so any replayable request can go again should its pooled
    // connection turn out closed under it (lib/http/retry.ts).
    const mayReplay = replayable(method, headers);
    let up: Sent;
    const attempt = () => {
      const sent = upstream.send(target, { method, path: target.path, headers }, body);
      up = sent;
      sent.on("response", onResponse);
      sent.on("error", (e: NodeJS.ErrnoException) => {
        if (res.headersSent) return void res.destroy();
        if (!res.destroyed && retryOnFreshConnection(sent, e, mayReplay)) {
          log.debug(`${method} ${target.host}: the pooled connection was closed under the request (${e.code}); sending it again`);
          return attempt();
        }
        const failed = upstreamFailed(target.host, e, under);
        res.writeHead(failed.status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(failed.text) });
        res.end(failed.text);
      });
    };
    attempt();
    res.on("close", () => {
      if (!res.writableFinished) up.destroy(); // the client went away
    });
  }

  function upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer, target: Target & { path: string }): void {
    const p = policy;
    const method = req.method ?? "GET";
    const g = gate(p, target.host, target.port);
    if ("block" in g) return denyRaw(socket, method, g.label, g.block);
    // Only WebSocket frames can be scanned after the switch; any other protocol would
    // leave the agent an unscanned pipe to the host.
    const protocol = String(req.headers.upgrade ?? "").trim().toLowerCase();
    if (protocol !== "websocket") {
      return denyRaw(socket, method, target.host, { status: 403, reason: `upgrade to ${JSON.stringify(protocol)} is refused: only WebSocket traffic can be scanned` }, g.rule.pattern);
    }
    // What follows the head is read as frames here; a server that honoured a declared body
    // would read those bytes (still masked) as the body instead, unscanned.
    const declared = req.headers["content-length"];
    if (req.headers["transfer-encoding"] !== undefined || (declared !== undefined && declared !== "0")) {
      return denyRaw(socket, method, target.host, { status: 400, reason: "an upgrade request cannot carry a body (Content-Length or Transfer-Encoding)" }, g.rule.pattern);
    }
    const headers = outgoingHeaders(req, target);
    headers.connection = "Upgrade";
    headers.upgrade = req.headers.upgrade;
    delete headers["sec-websocket-extensions"]; // no compression: frames stay readable (websocket.ts)
    const block = inspectHead(p, `${target.scheme}://${headers.host}${target.path}`, headers, g.rule.replacedHeaders);
    if (block) return denyRaw(socket, method, target.host, block, g.rule.pattern);

    const under = g.rule.pattern;
    // Frames the agent sends before the 101 wait for it, to be scanned as all after it are.
    const early = holdEarlyBytes(socket, head);
    const up = upstream.upgrade(target, { method, path: target.path, headers });
    const agentLeft = abandonWithAgent(socket, up);
    up.on("upgrade", (ures, usocket, uhead) => {
      // "upgrade" fires for a 101 only
      socket.write(headText(relayStatus(101)!, pairs(ures.rawHeaders)));
      if (uhead.length) socket.write(uhead);
      track(socket, { kind: "websocket", host: target.host, port: target.port });
      relayWebSocket(socket, usocket, early.take(), {
        maxMessageBytes: maxBody,
        budget,
        linger,
        // The policy in force now, not at the upgrade: a long-lived socket sees reloads.
        // Messages of 1 MiB or more go to the scan worker, as request bodies do.
        scan: (payload, what, charge) => {
          const p = policy;
          const reason = (f: Finding | null) => (f ? `detector ${f.detector} matched in ${what} (${f.label}: ${f.excerpt})` : null);
          if (payload.length < OFF_THREAD_BYTES) return reason(p.scanner.scan(payload.toString("latin1")));
          // The worker gets a copy (off-thread.ts), held until it answers.
          if (!charge.take(payload.length)) return OVER_BUDGET;
          return offThread.scan(p.scannerOptions, p.scanner, [payload]).then(reason);
        },
        onBlock: (b) => refused({ what: "websocket", host: target.host, reason: b.reason, under }, `blocked websocket to ${target.host}: ${b.reason}`),
        // Not the policy's refusal: logged as the agent's other lines are, as a 503 for want of budget is.
        onOverBudget: () => agentLines.warn(`closed websocket to ${target.host} with 1013 (try again later): ${overBudgetReason(budget)}`, `websocket over budget ${target.host}`, under),
      });
    });
    up.on("response", (ures) => {
      // The upstream declined the upgrade: its answer is relayed as a plain one is (its
      // status, its end-to-end headers: a www-authenticate the agent's retry needs), the
      // body streamed as it comes, never held whole, and the connection closed after it.
      // What the agent sent after its request was meant as frames: it goes nowhere.
      early.discard();
      const status = relayStatus(ures.statusCode);
      if (!status) {
        ures.destroy();
        return rawResponse(socket, 502, cannotRelay(target.host, `status ${ures.statusCode} is not a valid HTTP status`, under));
      }
      // A chunked body arrives unframed: it then ends with the connection.
      const relayed: [string, string][] = [...endToEndHeaders(ures.rawHeaders, ["transfer-encoding"]), ["connection", "close"]];
      socket.write(headText(status, relayed));
      // An upstream that fails mid-answer cuts the agent's connection; one that ends its
      // answer leaves it to linger for what the agent still sends (its upgrade's frames).
      pipeline(ures, socket, (e) => (e ? socket.destroy() : lingeringClose(socket, linger)));
    });
    up.on("error", (e) => {
      if (agentLeft()) return;
      early.discard();
      const failed = upstreamFailed(target.host, e, under);
      rawResponse(socket, failed.status, failed.text);
    });
    socket.on("error", () => socket.destroy());
    up.end();
  }

  /** The target of a request read inside a CONNECT tunnel: always the tunnel's host. */
  function tunnelTarget(req: http.IncomingMessage): (Target & { path: string }) | null {
    const t = tunnels.get(req.socket);
    if (!t) return null;
    const url = req.url ?? "/";
    const path = url.startsWith("/") ? url : (parseAbsolute(url)?.path ?? "/");
    return { scheme: t.scheme, host: t.host, port: t.port, path };
  }

  const limits = { ...TIMEOUTS, ...opts.timeouts };
  // node checks its deadlines every connectionsCheckingInterval (30 s by default): a
  // shortened deadline is checked as often as it needs.
  const checkMs = Math.min(30_000, Math.min(limits.headersMs, limits.requestMs) / 2);
  const serverOptions: http.ServerOptions = { maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: limits.requestMs, connectionsCheckingInterval: checkMs };
  // Parses the requests inside tunnels; sockets are handed to it, it never listens itself.
  const inner = http.createServer(serverOptions);
  // Deno's node:http destroys a keep-alive socket after each response when its server is
  // not listening (denoland/deno#35609); say it is, so tunnels stay keep-alive there too.
  Object.defineProperty(inner, "listening", { get: () => true });
  const server = http.createServer(serverOptions);
  for (const s of [inner, server]) {
    s.keepAliveTimeout = limits.idleMs;
    s.headersTimeout = limits.headersMs;
  }
  // Node checks headersTimeout and requestTimeout only on a server that listens, and the
  // inner one never does: without these a tunnel trickling a request head a byte a minute
  // would be held for ever. The upgrade handler takes its socket off them.
  const deadlines = tunnelDeadlines(inner, limits);
  for (const s of [inner, server]) {
    answerClientErrors(s, { linger, maxHeaderBytes: MAX_HEADER_BYTES, onAnswer: (status, why) => agentLines.warn(`request answered ${status}: ${why}`, `client error ${status}`) });
  }

  inner.on("request", (req, res) => {
    if (isLingering(req.socket)) return void req.resume(); // pipelined behind an answer that closed the connection
    const target = tunnelTarget(req);
    if (!target) return void res.destroy();
    forwardOrFail(req, res, target);
  });
  inner.on("upgrade", (req, socket: net.Socket, head: Buffer) => {
    deadlines.release(socket);
    if (isLingering(socket)) return void socket.destroy();
    const target = tunnelTarget(req);
    if (!target) return void socket.destroy();
    upgrade(req, socket, head, target);
  });

  server.on("connection", (s: net.Socket) => {
    lingerAfterLastAnswer(s, linger);
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  /**
   * Whether a proxy request lacks the agent key; if so it is answered 407, and logged and
   * recorded as a refusal of the host it asked for: someone on the machine who is not the
   * agent knocked. The name is scanned as the gate's are, so no secret reaches the log.
   * Requests inside a tunnel are the tunnel's.
   */
  function keyless(req: http.IncomingMessage, host: string | undefined): boolean {
    if (opts.agentKey === undefined || isAgentKey(proxyPassword(req.headers["proxy-authorization"]), opts.agentKey)) return false;
    const label = host === undefined ? "(no host)" : policy.scanner.scanName(host) ? "(redacted host name)" : host;
    const from = req.socket.remoteAddress ?? "an unknown address";
    refused({ what: req.method ?? "GET", host: label, reason: `${NO_AGENT_KEY} from ${from}: this proxy serves only its bottle's agent` });
    return true;
  }
  const KEYLESS = "bot-bottle firewall: this proxy serves only its bottle's agent, whose HTTPS_PROXY carries the key\n";
  const keylessHead = { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(KEYLESS), "proxy-authenticate": 'Basic realm="bot-bottle"', connection: "close" };
  const keylessRaw = (socket: net.Socket) =>
    lingeringClose(socket, linger, { answer: `HTTP/1.1 407 Proxy Authentication Required\r\n${Object.entries(keylessHead).map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n${KEYLESS}` });

  server.on("request", (req, res) => {
    if (isLingering(req.socket)) return void req.resume(); // pipelined behind an answer that closed the connection
    const target = parseAbsolute(req.url ?? "");
    if (keyless(req, target?.host)) {
      if (!req.readableEnded) req.resume();
      return void res.writeHead(407, keylessHead).end(KEYLESS);
    }
    if (!target) {
      const text = "bot-bottle firewall: this is an HTTP proxy; send absolute-form requests (http://host/path) or CONNECT host:port\n";
      res.writeHead(400, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text) });
      return void res.end(text);
    }
    forwardOrFail(req, res, target);
  });
  server.on("upgrade", (req, socket: net.Socket, head: Buffer) => {
    if (isLingering(socket)) return void socket.destroy();
    const target = parseAbsolute(req.url ?? "");
    if (keyless(req, target?.host)) return keylessRaw(socket);
    if (!target) return rawResponse(socket, 400, "bot-bottle firewall: upgrade requests must be absolute-form\n");
    upgrade(req, socket, head, target);
  });

  server.on("connect", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    const to = parseAuthority(req.url ?? "", 443);
    if (keyless(req, to?.host)) return keylessRaw(socket);
    if (!to) return rawResponse(socket, 400, `bot-bottle firewall: cannot parse CONNECT target ${JSON.stringify(req.url)}\n`);
    const g = gate(policy, to.host, to.port);
    if ("block" in g) return denyRaw(socket, "CONNECT", g.label, g.block);
    const task = g.rule.tlsPassthrough ? passthrough(socket, head, to, g.rule.pattern) : intercept(socket, head, to);
    task.catch((e) => {
      agentLines.error(`tunnel to ${to.host}: ${(e as Error).message}`, undefined, g.rule.pattern);
      socket.destroy();
    });
  });

  async function passthrough(socket: net.Socket, head: Buffer, to: Endpoint, under: string): Promise<void> {
    let up: net.Socket;
    try {
      up = await upstream.tunnel(to.host, to.port);
    } catch (e) {
      agentLines.warn(`tunnel to ${to.host}:${to.port} failed: ${(e as Error).message}`, undefined, under);
      return rawResponse(socket, upstreamFailureStatus(e), upstreamFailureText(`cannot open a tunnel to ${to.host}`, e as Error));
    }
    socket.write(ESTABLISHED);
    // Not decrypted, but the server the TLS names must be the one the CONNECT named: on a
    // shared front end the SNI picks the site. Plain HTTP is served like an intercepted
    // tunnel's: its Host header would pick the site just the same, and nothing is
    // encrypted to pass unscanned. Other protocols (ssh) pass as they are.
    if (head.length) socket.unshift(head);
    const decided = (b: Buffer) => {
      const kind = readClientHello(b).kind;
      return kind !== "need" && (kind !== "not-tls" || plainProtocol(b) !== "need");
    };
    const first = await peek(socket, limits.idleMs, decided);
    if (!first) return void up.destroy();
    const hello = readClientHello(first);
    if (hello.kind === "not-tls" && plainProtocol(first) === "http") {
      up.destroy();
      return serveInside(socket, { ...to, scheme: "http" });
    }
    const why =
      hello.kind === "bad" ? hello.reason
      : hello.kind === "hello" && net.isIP(to.host) === 0 && hello.sni !== to.host ? (hello.sni === null ? "its TLS names no server" : "its TLS names another server")
      : null;
    if (why) {
      // The 200 is out already, so the refusal is the closed tunnel (and the log line).
      refused({ what: "passthrough tunnel", host: to.host, reason: why, under }, `blocked passthrough tunnel to ${to.host}: ${why}`);
      up.destroy();
      return void socket.destroy();
    }
    track(socket, { kind: "passthrough tunnel", host: to.host, port: to.port, passthrough: true });
    pipeBoth(socket, up);
  }

  async function intercept(socket: net.Socket, head: Buffer, to: Endpoint): Promise<void> {
    const context = issuer.contextFor(to.host); // mint while the client starts its handshake
    context.catch(() => {});
    socket.write(ESTABLISHED);
    if (head.length) socket.unshift(head);
    const first = head.length ? head : await peek(socket, limits.idleMs);
    if (!first) return void socket.destroy();
    // Plain HTTP inside a tunnel (some ws:// clients do this): scanned all the same.
    if (first[0] !== TLS_HANDSHAKE) return serveInside(socket, { ...to, scheme: "http" });
    // Answers are written to the agent four TLS records at a time (RELAY_HIGH_WATER_MARK):
    // node's TLSSocket passes highWaterMark on to its streams, though its types leave it out.
    const options = { isServer: true, secureContext: await context, ALPNProtocols: ["http/1.1"], highWaterMark: RELAY_HIGH_WATER_MARK };
    const secure = new tls.TLSSocket(socket, options as tls.TLSSocketOptions);
    secure.on("error", () => secure.destroy());
    serveInside(secure, { ...to, scheme: "https" });
  }

  /** Hand a tunnel's (decrypted) stream to the inner server: every request in it is
   * gated, scanned and sent to the tunnel's host. */
  function serveInside(socket: net.Socket, tunnel: Tunnel): void {
    tunnels.set(socket, tunnel);
    lingerAfterLastAnswer(socket, linger);
    deadlines.open(socket);
    inner.emit("connection", socket);
    socket.resume(); // peek() paused it; a new 'data' listener alone does not resume a paused stream
  }

  return {
    server,
    setPolicy,
    async listen(port, host) {
      checkCa(opts.ca); // a bad CA fails here, at startup; minting waits for the first interception
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve();
        });
      });
      return server.address() as net.AddressInfo;
    },
    close() {
      blockedLog.close(); // counts still pending are said before the daemon goes
      agentLines.close();
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
        upstream.close();
        offThread.close();
      });
    },
  };
}
