// The benchmark's fake HTTPS upstream: answers POST /small and POST /large with fixed
// bodies over keep-alive, and says in a response header whether the request carried the
// credential egress is meant to inject, so the firewall→egress row proves injection.
import { Buffer } from "node:buffer";
import type http from "node:http";
import https from "node:https";

export interface Body {
  /** What the tables call it. */
  name: string;
  path: string;
  bytes: number;
}

export const BODIES: readonly Body[] = [
  { name: "small", path: "/small", bytes: 64 },
  { name: "1 MiB", path: "/large", bytes: 1 << 20 },
];

/** Response header: "injected" when the request carried the expected credential, else "absent". */
export const CREDENTIAL_HEADER = "x-bench-credential";

interface UpstreamOptions {
  cert: string;
  key: string;
  /** The exact Authorization value egress injects for the routed host. */
  authorization: string;
}

export function createUpstream(o: UpstreamOptions): https.Server {
  const payloads = new Map(BODIES.map((b) => [b.path, Buffer.alloc(b.bytes, "x")]));
  return https.createServer({ cert: o.cert, key: o.key, keepAliveTimeout: 65_000 }, (req: http.IncomingMessage, res: http.ServerResponse) => {
    req.resume();
    req.on("end", () => {
      const body = payloads.get(req.url ?? "");
      if (!body) {
        res.writeHead(404, { "content-length": 0 });
        return void res.end();
      }
      res.writeHead(200, {
        "content-type": "application/octet-stream",
        "content-length": body.length,
        [CREDENTIAL_HEADER]: req.headers.authorization === o.authorization ? "injected" : "absent",
      });
      res.end(body);
    });
  });
}
