// The supervise daemon as a node:http request handler: MCP over streamable HTTP at /mcp
// with stateful sessions (one McpServer per session, the SDK binds a server to one
// transport), plus /healthz for bb-bundle's readiness check. Sessions live in this
// process's memory, which is why a policy change reaches the firewall alone (a live
// re-read, or init restarting it on SIGUSR1): restarting supervise would drop the sessions.
//
// Only the agent may talk to it. On smolmachines it is published on a host loopback
// address, where a web page whose name was rebound to that address (DNS rebinding) could
// reach it from the operator's browser: so a request is answered only when its Host names
// what the agent uses (allowedHosts) and it carries no Origin (browsers send one; MCP
// clients do not). The SDK's own check (enableDnsRebindingProtection) is not used: it
// compares whole Host values, port included, and supervise cannot know the host port
// docker picks when publishing it; it lets listed Origins through, where no Origin is
// legitimate here; and it runs inside the transport, after this handler has read an
// initialize body.
import type { IncomingMessage, ServerResponse } from "node:http";
import { log } from "../../lib/log.ts";
import { createAgentLines } from "../../lib/log-limit.ts";
import type { RequestBook } from "./requests.ts";
import type { Session } from "./session.ts";
import { isAgentKey } from "../../lib/http/agent-key.ts";

/**
 * The MCP SDK (with its zod and ajv), loaded at the first MCP request rather than before
 * supervise listens: evaluating it is a good part of supervise's start, which the start
 * flow waits for (bb-provision's readiness probe), while the agent's first MCP call comes
 * later. esbuild keeps it in supervise.js, evaluated only when imported.
 */
let sdk: Promise<typeof import("./session.ts")> | undefined;
const loadSession = () => (sdk ??= import("./session.ts"));

export const MCP_PATH = "/mcp";
/** The largest call is a few KiB (a 4000-character question, JSON-escaped); a batch of
 * them fits too. The SDK's default, 4 MiB per POST, is what a flood would hold. */
export const MAX_BODY_BYTES = 256 * 1024;
/** HTTP requests in flight at once: each session's event stream, and every POST until
 * its calls are answered. Past it a request gets 503 before its body is read. */
export const MAX_REQUESTS = 64;
/** Connections open at once (main.ts sets it on the server): requests past MAX_REQUESTS
 * are answered and closed, so these are mostly idle keep-alives and half-sent headers. */
export const MAX_CONNECTIONS = 256;
/** Sessions kept at once. An agent opens one or two; one in a loop must not eat the
 * bundle's memory, so past this the least recently used session is closed (its client
 * gets 404 and, as the spec says, opens a new one). */
export const MAX_SESSIONS = 32;

export interface SuperviseHandlerOptions {
  slug: string;
  book: RequestBook;
  /** Default MAX_SESSIONS. */
  maxSessions?: number;
  /** Host header names (no port) the agent reaches supervise by; any other gets 403. */
  allowedHosts: readonly string[];
  /** Default MAX_BODY_BYTES. */
  maxBodyBytes?: number;
  /** Default MAX_REQUESTS. */
  maxRequests?: number;
  /** Serve MCP only at /KEY/mcp (the bottle's agent key, lib/http/agent-key.ts): the port
   * is on host loopback, open to every local user. */
  agentKey?: string;
}

interface SuperviseHandler {
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Close every open session. */
  close(): Promise<void>;
  sessionCount(): number;
  /** HTTP requests being answered now. */
  requestCount(): number;
}

function jsonRpcError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}

/** An error answer that closes the connection, leaving any unread body unread. */
function refuse(res: ServerResponse, status: number, message: string) {
  jsonRpcError(res, status, message, { connection: "close" });
}

class TooLarge extends Error {}

/** The body as JSON; TooLarge past `max` bytes, said or sent. */
async function readJson(req: IncomingMessage, max: number): Promise<unknown> {
  const tooLarge = () => new TooLarge(`Payload Too Large: the request body must not exceed ${max} bytes`);
  if (Number(req.headers["content-length"]) > max) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

/** The name in a Host header ("supervise:9100" -> "supervise", "[::1]:80" -> "[::1]"), or null. */
function hostName(header: string | undefined): string | null {
  if (!header) return null;
  try {
    return new URL(`http://${header}`).hostname;
  } catch {
    return null;
  }
}

export function createSuperviseHandler(opts: SuperviseHandlerOptions): SuperviseHandler {
  // In order of last use: the first entry is the one to close when a new session needs room.
  const sessions = new Map<string, Session>();
  const maxSessions = opts.maxSessions ?? MAX_SESSIONS;
  const maxBody = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  const maxRequests = opts.maxRequests ?? MAX_REQUESTS;
  const allowedHosts = new Set(opts.allowedHosts.map((h) => h.toLowerCase()));
  let requests = 0;
  // The agent can start session after session, or fail request after request: the first
  // of each line, then counts (lib/log-limit.ts). An info line is never left out of a
  // flooded log (lib/log.ts), so without this one per session past the cap grew it for ever.
  const agentLines = createAgentLines({ log, what: "lines about the agent's MCP requests" });

  /** Before a new session is kept: past maxSessions, the least recently used one goes. */
  function makeRoom() {
    if (sessions.size < maxSessions) return;
    const [id, oldest] = sessions.entries().next().value!;
    sessions.delete(id);
    agentLines.info(`session ${id} closed: ${maxSessions} sessions are open and a new one started`, "closed for room");
    void oldest.server.close().catch(() => {});
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const host = hostName(req.headers.host);
    if (host === null || !allowedHosts.has(host)) return refuse(res, 403, `Forbidden: Host ${JSON.stringify(req.headers.host ?? "")} is not how this bottle's agent reaches supervise`);
    if (req.headers.origin !== undefined) return refuse(res, 403, "Forbidden: requests from a web page (with an Origin header) are not answered");
    const path = new URL(req.url ?? "/", "http://supervise").pathname;
    if (path === "/healthz" && req.method === "GET") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (opts.agentKey !== undefined ? !isAgentKey(path, `/${opts.agentKey}${MCP_PATH}`) : path !== MCP_PATH) {
      // With a key, where the endpoint is would be the key.
      res.writeHead(404, { "content-type": "text/plain" }).end(opts.agentKey !== undefined ? "not found\n" : `not found: the MCP endpoint is ${MCP_PATH}\n`);
      return;
    }
    const sid = req.headers["mcp-session-id"];
    if (typeof sid === "string") {
      const session = sessions.get(sid);
      // 404 tells a spec-following client to start a new session.
      if (!session) return jsonRpcError(res, 404, `Session not found: ${sid}`);
      sessions.delete(sid); // used now: to the end of the line
      sessions.set(sid, session);
      await session.transport.handleRequest(req, res);
      return;
    }
    if (req.method !== "POST") return jsonRpcError(res, 400, "Bad Request: no Mcp-Session-Id header; initialize a session first");
    let body: unknown;
    try {
      body = await readJson(req, maxBody);
    } catch (e) {
      if (e instanceof TooLarge) return refuse(res, 413, e.message);
      return jsonRpcError(res, 400, `Bad Request: ${(e as Error).message}`);
    }
    const { isInitializeRequest, openSession } = await loadSession();
    if (!isInitializeRequest(body)) return jsonRpcError(res, 400, "Bad Request: no Mcp-Session-Id header; initialize a session first");
    await openSession({ slug: opts.slug, book: opts.book, maxBody, sessions, makeRoom }, req, res, body);
  }

  return {
    handler(req, res) {
      if (requests >= maxRequests) {
        return refuse(res, 503, `Service Unavailable: supervise is answering ${requests} requests already (at most ${maxRequests} at once); try again once one has finished`);
      }
      requests++;
      res.once("close", () => requests--);
      handle(req, res).catch((e) => {
        // The bundle's log is docker's: the path is said without the key in it.
        const url = opts.agentKey !== undefined ? (req.url ?? "").split(opts.agentKey).join("<agent key>") : req.url;
        agentLines.error(`${req.method} ${url}: ${(e as Error).message}`, `${req.method} ${(e as Error).message}`);
        if (!res.headersSent) jsonRpcError(res, 500, "Internal error");
        else res.end();
      });
    },
    async close() {
      agentLines.close(); // counts still pending are said
      const open = [...sessions.values()];
      sessions.clear();
      await Promise.allSettled(open.map((s) => s.server.close()));
    },
    sessionCount: () => sessions.size,
    requestCount: () => requests,
  };
}
