// The egress daemon as a library: an HTTP server on the bundle's loopback that speaks the
// hop protocol the firewall uses (see main.ts) and dials the real upstreams. It is the
// only process holding the token slots; it never logs a header value.
import { Buffer } from "node:buffer";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import process from "node:process";
import type { Duplex, Readable, Transform } from "node:stream";
import zlib from "node:zlib";
import { MAX_HEADER_BYTES, RELAY_HIGH_WATER_MARK } from "../../lib/http/limits.ts";
import { replayable, retryOnFreshConnection } from "../../lib/http/retry.ts";
import { relayStatus } from "../../lib/http/status.ts";
import { abandonWithAgent, headText, holdEarlyBytes } from "../../lib/http/upgrade-answer.ts";
import { lazyClientContext, lazyHttpsAgent } from "../../lib/tls/upstream-agents.ts";
import type { EgressRoutes } from "../../lib/sidecar-config.ts";
import { createLogger, type Logger } from "../../lib/log.ts";
import { createAgentLines } from "../../lib/log-limit.ts";
import { registrableDomain } from "../../lib/public-suffix.ts";
import { endToEndHeaders, flat, headerObject, pairs } from "../../lib/http/headers.ts";
import type { HopRequest, HopResponse } from "../../lib/http/hop-client.ts";
import { directSocket, relayDirect } from "../../lib/http/direct-body.ts";
import { createOriginPools } from "../../lib/http/origin-pools.ts";
import { headerValues } from "../../lib/http/response-head.ts";
import { maskedHeaders, Redactor, SecretMasker, secretForms, type Secret } from "./redact.ts";
import { WsRedactor } from "./ws-redact.ts";
import { armDeadlines, armHeadDeadline, DEFAULT_DEADLINES, dialWithin, isUpstreamTimeout, upstreamFailureStatus, type Deadlines } from "../../lib/http/upstream-deadlines.ts";
import { routableLookup } from "../../lib/http/lookup.ts";
import { credentialHeaderNames, injectedHeader, injectedSecrets, routeTable, type Route } from "./routes.ts";

interface Target {
  host: string;
  port: number;
}

interface EgressOptions {
  routes: EgressRoutes;
  /** Where token slots are read, at request time (default process.env). */
  env?: Record<string, string | undefined>;
  /** PEM certificates trusted for upstream TLS on top of the system store. */
  extraCa?: string[];
  /** Dial these host names at a fixed address instead of resolving them (tests). */
  resolve?: Map<string, Target>;
  /** How long an upstream's dial and the head of its answer may take (DEFAULT_DEADLINES). */
  deadlines?: Partial<Deadlines>;
  log?: Logger;
}

interface Egress {
  server: http.Server;
  /** Swap the route table; throws (keeping the old one) when a route is unusable. */
  setRoutes(routes: EgressRoutes): void;
  /** Stop listening and drop every open connection and tunnel. */
  close(): Promise<void>;
}

interface Prepared {
  options: https.RequestOptions;
  secure: boolean;
  route: Route | undefined;
  origin: string;
  /** The share of egress's lines the host's failures take from (shareOf). */
  share: string;
  /** The injected credential's spellings, masked in the answer (empty when not routed). */
  secrets: Secret[];
}

type Prep = { ok: true; value: Prepared } | { ok: false; status: number; reason: string; share?: string };

/**
 * The share of egress's lines a host's failures take from (lib/log-limit.ts): its
 * registrable domain. Egress does not know the allowlist entry a host came under, but the
 * made-up subdomains of one wildcard ("*.x.test", at any depth) share theirs, so they take
 * from one share and cannot use up the lines another host's first failure needs. Not the
 * last two labels: under a public suffix of two (github.io, co.uk) those would put every
 * registrant's hosts in one share, and one site's flood would silence all the others.
 */
function shareOf(hostname: string): string {
  return net.isIP(hostname) !== 0 ? hostname : registrableDomain(hostname);
}

const TLS_TRUST_ERRORS = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

function unbracket(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/** The largest request body egress keeps a copy of, to send again (lib/http/retry.ts). */
const REPLAY_BODY_BYTES = 1024 * 1024;

/** The agent's answer to an upstream that failed: 504 when a deadline gave up on it. */
function upstreamFailure(origin: string, e: NodeJS.ErrnoException): { status: number; reason: string } {
  return { status: upstreamFailureStatus(e), reason: isUpstreamTimeout(e) ? e.message : describeUpstreamError(origin, e) };
}

function describeUpstreamError(origin: string, e: NodeJS.ErrnoException): string {
  if (e.code && TLS_TRUST_ERRORS.has(e.code)) return `upstream ${origin} presented a TLS certificate egress does not trust (${e.code})`;
  if (e.code === "EUNROUTABLE") return `cannot reach upstream ${origin}: ${e.message}`;
  // An answer that cannot be parsed: the code alone (HPE_INVALID) tells the agent nothing.
  // The pools' client says what was sent and names the origin; node's (upgrades) says what.
  if (e.code?.startsWith("HPE_")) return e.message.startsWith(`${origin} `) ? e.message : `${origin} sent an answer egress cannot parse: ${e.message}`;
  return `cannot reach upstream ${origin}: ${e.code ?? e.message}`;
}

const DECODERS: Record<string, () => zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress> = {
  gzip: () => zlib.createGunzip(),
  "x-gzip": () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
};

/** `stream` starts the masking; an identity body may instead be masked as it is relayed (`masker`), its length kept. */
type RedactedBody = { ok: true; stream: () => Readable; masker?: () => SecretMasker; dropHeaders: string[] } | { ok: false; reason: string };

/** A header's values as one, the way node's IncomingMessage.headers joins repeats; undefined when absent. */
function joined(upRes: HopResponse, name: string): string | undefined {
  const values = headerValues(upRes.rawHeaders, name);
  return values.length ? values.join(", ") : undefined;
}

/**
 * A 204 or 304: no body whatever its head says (RFC 9112 6.3), and the reader reads none.
 * Its Transfer-Encoding is not relayed: on such an answer node's server adds "Connection:
 * close" and ends the agent's keep-alive connection. Dropping it frees no bytes to pass as
 * a body: none is read, and the agent's client reads none after these statuses either.
 */
function bodiless(status: number): boolean {
  return status === 204 || status === 304;
}

/** node's answer to an upgrade request that was declined, as the reader's answers look. */
function answerOf(m: http.IncomingMessage): HopResponse {
  return { status: m.statusCode ?? 0, rawHeaders: m.rawHeaders, body: m };
}

/**
 * A routed upstream's body with the credential masked. Egress asked for identity, but an
 * upstream may encode anyway: gzip, deflate and br are decoded first (the answer then goes
 * on unencoded), anything else is refused rather than passed on unsearched.
 */
function redactedBody(upRes: HopResponse, secrets: Secret[], method: string | undefined, origin: string): RedactedBody {
  // Only "chunked" is undone on the way in; any other transfer coding would reach the
  // agent (which decodes it) with the credential unsearched. The pools refuse such an
  // answer already (lib/http/body-framing.ts); a declined upgrade's, read by node's
  // parser, which passes them, is refused here.
  const te = joined(upRes, "transfer-encoding");
  if (te !== undefined && te.trim().toLowerCase() !== "chunked") {
    return { ok: false, reason: `${origin} answered with transfer-encoding ${te}, which egress cannot search for the injected credential` };
  }
  const encoding = (joined(upRes, "content-encoding") ?? "identity").trim().toLowerCase();
  // No body to decode (a decoder fed nothing fails): the headers describe one not sent.
  const bodiless = method === "HEAD" || upRes.status === 204 || upRes.status === 304 || joined(upRes, "content-length") === "0";
  if (bodiless || encoding === "identity" || encoding === "") {
    return { ok: true, stream: () => upRes.body.pipe(new Redactor(secrets)), masker: () => new SecretMasker(secrets), dropHeaders: [] };
  }
  const decoder = DECODERS[encoding];
  if (!decoder) return { ok: false, reason: `${origin} answered with content-encoding ${encoding}, which egress cannot search for the injected credential` };
  const stream = () => {
    const decode = decoder();
    const redactor = new Redactor(secrets);
    decode.on("error", (e) => redactor.destroy(e));
    return upRes.body.pipe(decode).pipe(redactor);
  };
  return { ok: true, stream, dropHeaders: ["content-encoding", "content-length"] };
}

export function createEgress(opts: EgressOptions): Egress {
  const env = opts.env ?? process.env;
  const log = opts.log ?? createLogger({ prefix: "egress: " });
  // Every failed request is the agent's (an allowed host that is down answers each one):
  // the first of each line, then counts (lib/log-limit.ts).
  const agentLines = createAgentLines({ log, what: "warnings about requests" });
  const resolveMap = opts.resolve ?? new Map<string, Target>();
  const deadlines: Deadlines = { ...DEFAULT_DEADLINES, ...opts.deadlines };
  const lookup = routableLookup("egress");
  const secureContext = lazyClientContext(opts.extraCa);
  // Plain requests go through egress's own reader (lib/http/hop-client.ts), pooled per
  // origin: node's http client copied every body chunk it parsed, about a tenth of
  // egress's CPU per MiB relayed. A transfer coding other than chunked is refused there
  // (lib/http/body-framing.ts). An upgraded socket leaves its pool for good, so upgrades
  // get node's client through agents that do not pool.
  const pools = createOriginPools({ lookup, secureContext, connectMs: deadlines.connectMs, namePeer: true });
  const httpAgent = new http.Agent({ keepAlive: false });
  const httpsAgent = lazyHttpsAgent({ keepAlive: false }, secureContext);
  let routes = routeTable(opts.routes);
  const tunnels = new Set<Duplex>();

  // A route's spellings, worked out once per token (slots are read at request time).
  const secretCache = new Map<string, Secret[]>();
  function secretsOf(route: Route): Secret[] {
    const key = `${route.auth}\0${env[route.slot] ?? ""}`;
    let hit = secretCache.get(key);
    if (!hit) {
      if (secretCache.size >= 64) secretCache.clear();
      secretCache.set(key, (hit = secretForms(injectedSecrets(route, env))));
    }
    return hit;
  }

  function target(hostname: string, port: number): Target {
    return resolveMap.get(hostname) ?? { host: hostname, port };
  }

  function prepare(req: http.IncomingMessage, upgrade: boolean): Prep {
    let url: URL;
    try {
      url = new URL(req.url ?? "");
    } catch {
      return { ok: false, status: 400, reason: `expected an absolute-form request (METHOD https://host/path), got ${JSON.stringify(req.url)}` };
    }
    const secure = url.protocol === "https:";
    if (!secure && url.protocol !== "http:") return { ok: false, status: 400, reason: `unsupported scheme ${url.protocol}` };
    const hostname = unbracket(url.hostname).toLowerCase();
    const origin = `${url.protocol}//${url.host}`;
    const share = shareOf(hostname);
    const route = routes.get(hostname);
    // On a routed host the answer is searched for the credential (redact.ts), which needs
    // it unencoded: identity is asked for, and a WebSocket is kept from compressing frames.
    // It needs it whole too: an echo served in byte ranges would hand it over in slices
    // no search can recognise, so Range goes (a server may always answer it in full).
    const routedDrop = ["accept-encoding", "sec-websocket-extensions", "range", "if-range"];
    const drop = ["host", ...(route ? [...credentialHeaderNames(route), ...routedDrop] : [])];
    const headers = endToEndHeaders(req.rawHeaders, drop);
    headers.push(["host", url.host]);
    if (route) {
      if (!secure) return { ok: false, status: 502, reason: `refusing to send the credential for ${route.host} over plain http; use https`, share };
      // TRACE answers with the request it received, injected credential included.
      if (/^TRAC[EK]$/i.test(req.method ?? "")) return { ok: false, status: 405, reason: `refusing ${req.method} to ${route.host}: the upstream would echo the injected credential back`, share };
      const inj = injectedHeader(route, env);
      if (!inj.ok) return { ok: false, status: 502, reason: inj.reason, share };
      headers.push(inj.header);
      if (!upgrade) headers.push(["accept-encoding", "identity"]);
    }
    if (upgrade) {
      headers.push(["connection", "upgrade"]);
      headers.push(["upgrade", req.headers.upgrade ?? ""]);
    }
    const t = target(hostname, Number(url.port || (secure ? 443 : 80)));
    const options: https.RequestOptions = {
      host: t.host,
      port: t.port,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers: headerObject(headers),
      maxHeaderSize: MAX_HEADER_BYTES,
      agent: secure ? httpsAgent.get() : httpAgent,
      lookup,
    };
    // Certificates are checked against the name the agent asked for, even when --resolve
    // sends the connection elsewhere; SNI must not carry an IP literal.
    if (secure && net.isIP(hostname) === 0) options.servername = hostname;
    const secrets = route ? secretsOf(route) : [];
    return { ok: true, value: { options, secure, route, origin, share, secrets } };
  }

  function routeNote(route: Route | undefined): string {
    return route ? ` (route ${route.auth} from ${route.slot})` : "";
  }

  function fail(res: http.ServerResponse, status: number, reason: string, share?: string) {
    agentLines.warn(reason, undefined, share);
    const body = Buffer.from(`egress: ${reason}\n`, "utf8");
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": body.length });
    res.end(body);
  }

  function onRequest(req: http.IncomingMessage, res: http.ServerResponse) {
    const prep = prepare(req, false);
    if (!prep.ok) {
      req.resume();
      fail(res, prep.status, prep.reason, prep.share);
      return;
    }
    const { options, secure, route, origin, share, secrets } = prep.value;
    const pool = pools.poolFor({ origin, host: options.host!, port: Number(options.port), secure, servername: options.servername });
    /** Relay the upstream's status and headers; false (the answer refused) when they cannot be. */
    const relayHead = (upRes: HopResponse, headers: [string, string][]): boolean => {
      const status = relayStatus(upRes.status);
      try {
        if (!status) throw new Error(`status ${upRes.status} is not a valid HTTP status`);
        res.writeHead(status.code, status.phrase, flat(bodiless(status.code) ? headers.filter(([k]) => k.toLowerCase() !== "transfer-encoding") : headers));
        return true;
      } catch (e) {
        upRes.body.destroy();
        fail(res, 502, `${origin} sent an answer egress cannot relay: ${(e as Error).message}`, share);
        return false;
      }
    };
    const onResponse = (upRes: HopResponse) => {
      log.debug(`${req.method} ${origin} -> ${upRes.status}${routeNote(route)}`);
      // A body that breaks off (the upstream closed mid-answer, bad framing) is cut off
      // here too, never ended as if it were whole.
      upRes.body.on("error", () => res.destroy());
      if (!secrets.length) {
        if (!relayHead(upRes, endToEndHeaders(upRes.rawHeaders))) return;
        const socket = directSocket(res, upRes);
        if (socket) relayDirect(res, socket, upRes.body);
        else upRes.body.pipe(res);
        return;
      }
      const body = redactedBody(upRes, secrets, req.method, origin);
      if (!body.ok) {
        upRes.body.destroy();
        fail(res, 502, body.reason, share);
        return;
      }
      if (!relayHead(upRes, maskedHeaders(endToEndHeaders(upRes.rawHeaders, body.dropHeaders), secrets))) return;
      // Decoded, it has no Content-Length any more, and goes through res to be chunk-encoded.
      const socket = body.masker ? directSocket(res, upRes) : null;
      if (socket) return relayDirect(res, socket, upRes.body, body.masker!());
      const stream = body.stream();
      stream.on("error", () => res.destroy()); // a body that does not decode is cut off
      stream.pipe(res);
    };
    // A replayable request can be sent again should its pooled connection turn out closed
    // under it (lib/http/retry.ts), once its whole body is here: the body streams through,
    // and a copy is kept on the side until the answer begins (up to REPLAY_BODY_BYTES).
    let kept: Buffer[] | null = replayable(req.method, req.headers) ? [] : null;
    let keptBytes = 0;
    if (kept) {
      req.on("data", (c: Buffer) => {
        keptBytes += c.length;
        if (keptBytes > REPLAY_BODY_BYTES) kept = null;
        else kept?.push(c);
      });
    }
    let upstream: HopRequest;
    const attempt = (body?: Buffer) => {
      const headers = options.headers as http.OutgoingHttpHeaders;
      // The first time the body streams through as it arrives; again, it is the copy.
      const sent = pool.request({ method: req.method ?? "GET", target: options.path!, headers, body: body ?? req });
      sent.on("response", (upRes: HopResponse) => {
        kept = null; // answered: it will not be sent again
        onResponse(upRes);
      });
      upstream = sent;
      // The dial's deadline is the pool's (lib/http/origin-pools.ts).
      armHeadDeadline(sent, origin, deadlines.headMs);
      sent.on("error", (e: NodeJS.ErrnoException) => {
        if (res.headersSent) return void res.destroy();
        const whole = kept !== null && req.readableEnded;
        // A deadline's TIMEOUT is not a connection closed under the request: never sent again.
        if (!res.destroyed && retryOnFreshConnection(sent, e, whole)) {
          log.debug(`${req.method} ${origin}: the pooled connection was closed under the request (${e.code}); sending it again`);
          return attempt(Buffer.concat(kept!, keptBytes));
        }
        const failure = upstreamFailure(origin, e);
        fail(res, failure.status, failure.reason, share);
      });
    };
    attempt();
    // The client went away before the response finished: stop the upstream too.
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
  }

  function rawFail(socket: Duplex, status: number, reason: string, share?: string) {
    agentLines.warn(reason, undefined, share);
    const body = `egress: ${reason}\n`;
    const text = http.STATUS_CODES[status] ?? "";
    socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    socket.resume(); // what follows is dropped, so the end of the sender's side is seen and the socket let go
  }

  /** Join a and b both ways; what b sends passes `bToA` first when given. */
  function splice(a: Duplex, b: Duplex, bToA?: Transform) {
    tunnels.add(a);
    tunnels.add(b);
    const done = () => {
      a.destroy();
      b.destroy();
      tunnels.delete(a);
      tunnels.delete(b);
    };
    a.on("error", done).on("close", done);
    b.on("error", done).on("close", done);
    a.pipe(b);
    if (bToA) {
      bToA.on("error", (e) => {
        agentLines.warn(e.message);
        done();
      });
      b.pipe(bToA).pipe(a);
    }
    else b.pipe(a);
  }

  function onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer) {
    socket.on("error", () => socket.destroy());
    const prep = prepare(req, true);
    if (!prep.ok) {
      rawFail(socket, prep.status, prep.reason, prep.share);
      return;
    }
    const { options, secure, route, origin, share, secrets } = prep.value;
    /** The head of an answer to an upgrade, written by hand, masked; null when its status cannot be relayed. */
    const answerHead = (upRes: http.IncomingMessage, headers: [string, string][]): string | null => {
      const status = relayStatus(upRes.statusCode);
      return status && headText(status, maskedHeaders(headers, secrets));
    };
    // Bytes sent before the 101 go on after it, as they came; not to a refusal.
    const early = holdEarlyBytes(socket, head);
    const upstream = (secure ? https.request : http.request)(options);
    armDeadlines(upstream, origin, deadlines);
    const agentLeft = abandonWithAgent(socket, upstream);
    upstream.on("upgrade", (upRes, upSocket, upHead) => {
      log.debug(`upgrade ${origin} -> ${upRes.statusCode}${routeNote(route)}`);
      socket.write(answerHead(upRes, pairs(upRes.rawHeaders))!); // a 101 is always a valid status
      // A WebSocket's frames are read and re-framed (ws-redact.ts), so a credential split
      // by a frame boundary is masked too; other protocols are masked as bytes.
      const websocket = String(upRes.headers.upgrade ?? "").trim().toLowerCase() === "websocket";
      const redactor = !secrets.length ? undefined : websocket ? new WsRedactor(secrets) : new Redactor(secrets);
      if (upHead.length) upSocket.unshift(upHead);
      const sent = early.take();
      if (sent.length) upSocket.write(sent);
      splice(socket, upSocket, redactor);
    });
    // The upstream declined the upgrade: relay its answer, streamed, and close.
    upstream.on("response", (upRes) => {
      log.debug(`upgrade ${origin} -> ${upRes.statusCode} (declined)${routeNote(route)}`);
      early.discard();
      upRes.on("error", () => socket.destroy()); // an upstream that fails mid-answer cuts the agent's connection
      const body = secrets.length ? redactedBody(answerOf(upRes), secrets, req.method, origin) : { ok: true as const, stream: () => upRes as Readable, dropHeaders: [] };
      if (!body.ok) {
        upRes.destroy();
        rawFail(socket, 502, body.reason, share);
        return;
      }
      const relayed = endToEndHeaders(upRes.rawHeaders, ["transfer-encoding", "content-length", ...body.dropHeaders]);
      const text = answerHead(upRes, [...relayed, ["connection", "close"]]);
      if (text === null) {
        upRes.destroy();
        rawFail(socket, 502, `${origin} sent an answer egress cannot relay: status ${upRes.statusCode} is not a valid HTTP status`, share);
        return;
      }
      socket.write(text);
      const stream = body.stream();
      stream.on("error", () => socket.destroy());
      stream.pipe(socket);
    });
    upstream.on("error", (e: NodeJS.ErrnoException) => {
      if (agentLeft()) return;
      early.discard();
      const failure = upstreamFailure(origin, e);
      rawFail(socket, failure.status, failure.reason, share);
    });
    upstream.end();
  }

  // A tunnel carries bytes egress cannot read, so nothing is injected: routed hosts are
  // never tls_passthrough, the firewall sends them as requests.
  function onConnect(req: http.IncomingMessage, socket: Duplex, head: Buffer) {
    socket.on("error", () => socket.destroy());
    const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(req.url ?? "");
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65535) {
      rawFail(socket, 400, `CONNECT needs host:port, got ${JSON.stringify(req.url)}`);
      return;
    }
    const hostname = unbracket(m[1]!).toLowerCase();
    dialWithin(target(hostname, port), `${hostname}:${port}`, deadlines.connectMs, lookup).then(
      (upstream) => {
        log.debug(`CONNECT ${hostname}:${port} open`);
        socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        if (head.length) upstream.write(head);
        splice(socket, upstream);
      },
      (e: NodeJS.ErrnoException) => {
        const failure = upstreamFailure(`${hostname}:${port}`, e);
        rawFail(socket, failure.status, failure.reason, shareOf(hostname));
      },
    );
  }

  // The firewall's connections take answers four TLS records at a time (RELAY_HIGH_WATER_MARK).
  const server = http.createServer({ keepAliveTimeout: 65_000, maxHeaderSize: MAX_HEADER_BYTES, highWaterMark: RELAY_HIGH_WATER_MARK }, onRequest);
  server.on("upgrade", onUpgrade);
  server.on("connect", onConnect);

  return {
    server,
    setRoutes(next) {
      routes = routeTable(next);
    },
    close() {
      agentLines.close(); // counts still pending are said before egress goes
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of tunnels) s.destroy();
        httpAgent.destroy();
        httpsAgent.destroy();
        pools.close();
      });
    },
  };
}
