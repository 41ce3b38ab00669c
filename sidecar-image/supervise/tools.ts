// The MCP tools the agent sees. Each answer carries a sentence for the model (text) and
// the same facts as structured content for clients that read it.
// The @ts-types lines are for deno check (see session.ts).
// @ts-types="@modelcontextprotocol/sdk/server/mcp"
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
// @ts-types="@modelcontextprotocol/sdk/types"
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod/v3";
import { BbError } from "../../lib/errors.ts";
import { publicSuffixUnderWildcard } from "../../lib/public-suffix.ts";
import { hostText, normalizeHost, RequestKind, RequestStatus, type QueueRequest } from "../../lib/supervise/queue.ts";
import type { Requests } from "./requests.ts";

const Outcome = {
  id: z.string(),
  kind: RequestKind,
  status: RequestStatus,
  host: z.string().nullable(),
  answer: z.string().nullable(),
};

function sentence(r: QueueRequest): string {
  const later = `Call check_request with id "${r.id}" later to see the decision.`;
  if (r.kind === "host") {
    if (r.status === "approved") return `Approved: ${r.host} is now allowed through the firewall (request ${r.id}).`;
    if (r.status === "denied") return `Denied: the operator did not allow ${r.host} (request ${r.id})${r.answer ? `: ${r.answer}` : "."}`;
    return `Pending: the operator has not decided on ${r.host} yet (request ${r.id}). ${later}`;
  }
  if (r.status === "approved") return `The operator answered: ${r.answer ?? ""}`;
  if (r.status === "denied") return `The operator declined to answer (request ${r.id})${r.answer ? `: ${r.answer}` : "."}`;
  return `Pending: the operator has not answered yet (request ${r.id}). ${later}`;
}

function result(r: QueueRequest): CallToolResult {
  return {
    content: [{ type: "text", text: sentence(r) }],
    structuredContent: { id: r.id, kind: r.kind, status: r.status, host: r.host, answer: r.answer },
  };
}

function failure(text: string): CallToolResult {
  return { content: [{ type: "text", text }], isError: true };
}

/** A refusal from the request book (too many pending, too many calls in flight) is an answer for the agent. */
async function answered(ask: () => Promise<QueueRequest>): Promise<CallToolResult> {
  try {
    return result(await ask());
  } catch (e) {
    if (e instanceof BbError && (e.code === "STATE" || e.code === "BUSY")) return failure(e.message);
    throw e;
  }
}

export function registerSuperviseTools(server: McpServer, book: Requests): void {
  server.registerTool(
    "request_host_access",
    {
      title: "Ask the operator to allow a host",
      description:
        "Ask the human operator to add a host to this sandbox's firewall allowlist. Waits a while for the decision; " +
        "if it is still pending, call check_request with the returned id later. Approved hosts are reachable through the usual proxy right away.",
      inputSchema: {
        host: z.string().min(1).max(253).describe('Host name, e.g. "api.example.com", or "*.example.com" for its subdomains'),
        reason: z.string().min(1).max(2000).describe("Why the task needs this host; the operator reads it"),
        tls_passthrough: z.boolean().optional().describe("Skip TLS inspection for this host (only for clients that pin certificates)"),
      },
      outputSchema: Outcome,
    },
    async ({ host, reason, tls_passthrough }, extra) => {
      const open = publicSuffixUnderWildcard(hostText(host));
      if (open) {
        return failure(`"${host}" would open every site anyone registers under ${open.text}, not one organisation's: ask for the host itself, or for *.NAME.${open.suffix}`);
      }
      const normal = normalizeHost(host);
      if (!normal) return failure(`"${host}" is not a host name: give just the host, like api.example.com (no scheme, port or path)`);
      return answered(() => book.requestHost({ host: normal, reason, tlsPassthrough: tls_passthrough ?? false }, extra.signal));
    },
  );

  server.registerTool(
    "ask_operator",
    {
      title: "Ask the operator a question",
      description: "Ask the human operator a question. Waits a while for the answer; if none comes, call check_request with the returned id later.",
      inputSchema: { question: z.string().min(1).max(4000) },
      outputSchema: Outcome,
    },
    async ({ question }, extra) => answered(() => book.askOperator(question, extra.signal)),
  );

  server.registerTool(
    "check_request",
    {
      title: "Check an earlier request",
      description: "The current status of a request made with request_host_access or ask_operator.",
      inputSchema: { id: z.string().min(1).max(64) },
      outputSchema: Outcome,
    },
    async ({ id }) => {
      const r = await book.check(id);
      return r ? result(r) : failure(`No request with id "${id}" in this bottle.`);
    },
  );
}
