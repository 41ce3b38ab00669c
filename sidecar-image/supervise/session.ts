// One MCP session of supervise: an McpServer with the supervise tools bound to one
// streamable HTTP transport (the SDK binds a server to one transport). The only module of
// supervise that loads the MCP SDK: server.ts imports it at the first MCP request, so that
// supervise listens without evaluating the SDK first.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
// The @ts-types lines are for deno check: the SDK's "./*" export maps types to "*.d.ts",
// so for "server/mcp.js" deno looks for mcp.js.d.ts and finds none (tsc strips the .js
// first); the extensionless subpath names the real .d.ts. modelcontextprotocol/typescript-sdk#2701.
// @ts-types="@modelcontextprotocol/sdk/server/mcp"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
// @ts-types="@modelcontextprotocol/sdk/server/streamableHttp"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { log } from "../../lib/log.ts";
import type { RequestBook } from "./requests.ts";
import { registerSuperviseTools } from "./tools.ts";

// @ts-types="@modelcontextprotocol/sdk/types"
export { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";

export interface Session {
  server: McpServer;
  transport: StreamableHTTPServerTransport;
}

interface SessionContext {
  slug: string;
  book: RequestBook;
  maxBody: number;
  /** The open sessions by id, in order of last use; the new one is added once initialized. */
  sessions: Map<string, Session>;
  /** Called before the new session is added: closes one when they are at the cap. */
  makeRoom: () => void;
}

/** Start a session for an initialize request (`body`, read already) and answer it. */
export async function openSession(ctx: SessionContext, req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
  const { sessions } = ctx;
  const server = new McpServer(
    { name: "bot-bottle-supervise", version: "1.0.0" },
    { instructions: `Ask the operator of bottle ${ctx.slug} for network access (request_host_access) or anything else (ask_operator).` },
  );
  registerSuperviseTools(server, ctx.book.forSession());
  const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    maxRequestBodySize: ctx.maxBody,
    onsessioninitialized: (id) => {
      ctx.makeRoom();
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
