// The supervise daemon as a node:http request handler: MCP over streamable HTTP at /mcp
// with stateful sessions (one McpServer per session, the SDK binds a server to one
// transport), plus /healthz for bb-bundle's readiness check. Sessions live in this
// process's memory, which is why a policy change reaches the firewall alone (a live
// re-read, or init restarting it on SIGUSR1): restarting supervise would drop the sessions.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { log } from "../../lib/log.ts";
import type { RequestBook } from "./requests.ts";
import { registerSuperviseTools } from "./tools.ts";

export const MCP_PATH = "/mcp";
const MAX_BODY = 1 << 20;
/** Sessions kept at once. An agent opens one or two; one in a loop must not eat the
 * bundle's memory, so past this the least recently used session is closed (its client
 * gets 404 and, as the spec says, opens a new one). */
export const MAX_SESSIONS = 32;

export interface SuperviseHandlerOptions {
  slug: string;
  book: RequestBook;
  /** Default MAX_SESSIONS. */
  maxSessions?: number;
}

export interface SuperviseHandler {
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Close every open session. */
  close(): Promise<void>;
  sessionCount(): number;
}

interface Session {
  server: McpServer;
  transport: StreamableHTTPServerTransport;
}

function jsonRpcError(res: ServerResponse, status: number, message: string) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error(`request body over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

export function createSuperviseHandler(opts: SuperviseHandlerOptions): SuperviseHandler {
  // In order of last use: the first entry is the one to close when a new session needs room.
  const sessions = new Map<string, Session>();
  const maxSessions = opts.maxSessions ?? MAX_SESSIONS;

  function closeLeastRecentlyUsed() {
    const [id, oldest] = sessions.entries().next().value!;
    sessions.delete(id);
    log.info(`session ${id} closed: ${maxSessions} sessions are open and a new one started`);
    void oldest.server.close().catch(() => {});
  }

  async function openSession(req: IncomingMessage, res: ServerResponse, body: unknown) {
    const server = new McpServer(
      { name: "bot-bottle-supervise", version: "1.0.0" },
      { instructions: `Ask the operator of bottle ${opts.slug} for network access (request_host_access) or anything else (ask_operator).` },
    );
    registerSuperviseTools(server, opts.book);
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        if (sessions.size >= maxSessions) closeLeastRecentlyUsed();
        sessions.set(id, { server, transport });
        log.debug(`session ${id} opened (${sessions.size} open)`);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId && sessions.delete(transport.sessionId)) log.debug(`session ${transport.sessionId} closed`);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const path = new URL(req.url ?? "/", "http://supervise").pathname;
    if (path === "/healthz" && req.method === "GET") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (path !== MCP_PATH) {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found: the MCP endpoint is ${MCP_PATH}\n`);
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
      body = await readJson(req);
    } catch (e) {
      return jsonRpcError(res, 400, `Bad Request: ${(e as Error).message}`);
    }
    if (!isInitializeRequest(body)) return jsonRpcError(res, 400, "Bad Request: no Mcp-Session-Id header; initialize a session first");
    await openSession(req, res, body);
  }

  return {
    handler(req, res) {
      handle(req, res).catch((e) => {
        log.error(`${req.method} ${req.url}: ${(e as Error).message}`);
        if (!res.headersSent) jsonRpcError(res, 500, "Internal error");
        else res.end();
      });
    },
    async close() {
      const open = [...sessions.values()];
      sessions.clear();
      await Promise.allSettled(open.map((s) => s.server.close()));
    },
    sessionCount: () => sessions.size,
  };
}
