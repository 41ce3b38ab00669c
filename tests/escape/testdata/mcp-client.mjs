// A minimal MCP client over streamable HTTP, run by the agent's own node (18) from stdin:
//   node --input-type=module - open                      -> {"session": "..."}
//   node --input-type=module - call SESSION TOOL ARGS    -> the JSON-RPC result
// It speaks to $BB_SUPERVISE_URL exactly as an agent CLI does: initialize, keep the
// mcp-session-id header, notifications/initialized, then tools/call on that session.
const url = process.env.BB_SUPERVISE_URL;
const [command, ...rest] = process.argv.slice(2);
const PROTOCOL = "2025-03-26";

async function post(body, session) {
  const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
  if (session) Object.assign(headers, { "mcp-session-id": session, "mcp-protocol-version": PROTOCOL });
  const res = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  const text = await res.text();
  if (res.status >= 400) throw new Error(`HTTP ${res.status}: ${text}`);
  // An SSE stream carries the answer in "data:" lines; plain JSON is the answer itself.
  const data = res.headers.get("content-type")?.includes("text/event-stream")
    ? text.split("\n").filter((l) => l.startsWith("data:")).map((l) => JSON.parse(l.slice(5)))
    : text ? [JSON.parse(text)] : [];
  const answer = data.find((m) => m.id === body.id);
  return { session: res.headers.get("mcp-session-id"), answer };
}

if (command === "open") {
  const init = await post({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: "escape-suite", version: "1" } },
  });
  if (!init.session || init.answer?.error) throw new Error(`initialize failed: ${JSON.stringify(init)}`);
  await post({ jsonrpc: "2.0", method: "notifications/initialized" }, init.session);
  process.stdout.write(JSON.stringify({ session: init.session }) + "\n");
} else if (command === "call") {
  const [session, name, args] = rest;
  const { answer } = await post({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name, arguments: JSON.parse(args) } }, session);
  process.stdout.write(JSON.stringify(answer) + "\n");
} else {
  throw new Error(`usage: open | call SESSION TOOL ARGS (got ${command})`);
}
