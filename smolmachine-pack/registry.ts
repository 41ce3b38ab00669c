// A read-only OCI distribution endpoint serving one image from a `docker save` tarball,
// for `smolvm pack create`, which pulls only from a registry. It answers just the pull
// side of the spec: GET/HEAD of /v2/, of the manifest by tag or digest, and of blobs, with
// Content-Type, Content-Length and Docker-Content-Digest. Anything else is 404 (unknown
// name, tag or digest) or 405 (any write). It listens on loopback only and lives for one
// pack.
import { Buffer } from "node:buffer";
import { createReadStream } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { BbError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { OCI_MANIFEST, type ArchiveImage } from "./docker-archive.ts";

interface RegistryOptions {
  image: ArchiveImage;
  /** Repository name, e.g. "bot-bottle/agent". */
  name: string;
  tag: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

function send(res: ServerResponse, status: number, headers: Record<string, string | number>, body: string | Uint8Array | null, head: boolean) {
  res.writeHead(status, { "Docker-Distribution-API-Version": "registry/2.0", ...headers });
  res.end(head ? undefined : (body ?? undefined));
}

function error(res: ServerResponse, status: number, code: string, message: string, head: boolean) {
  const body = JSON.stringify({ errors: [{ code, message, detail: null }] });
  send(res, status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) }, body, head);
}

/** The request handler (a library first: tests drive it in-process). */
export function createRegistryHandler(opts: RegistryOptions): Handler {
  const { image, name, tag } = opts;
  return (req, res) => {
    const head = req.method === "HEAD";
    if (req.method !== "GET" && !head) {
      error(res, 405, "UNSUPPORTED", "this registry is read-only", false);
      return;
    }
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? "/", "http://registry").pathname);
    } catch {
      error(res, 400, "NAME_INVALID", "malformed request path", head);
      return;
    }
    if (path === "/v2/" || path === "/v2") {
      send(res, 200, { "Content-Type": "application/json", "Content-Length": 2 }, "{}", head);
      return;
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(path);
    if (!m) {
      error(res, 404, "NOT_FOUND", `no route for ${path}`, head);
      return;
    }
    const [, repo, kind, ref] = m as unknown as [string, string, string, string];
    if (repo !== name) {
      error(res, 404, "NAME_UNKNOWN", `repository ${repo} is not known here`, head);
      return;
    }
    if (kind === "manifests") {
      if (ref !== tag && ref !== image.manifestDigest) {
        error(res, 404, "MANIFEST_UNKNOWN", `manifest ${ref} is not known here`, head);
        return;
      }
      send(res, 200, { "Content-Type": OCI_MANIFEST, "Content-Length": image.manifest.length, "Docker-Content-Digest": image.manifestDigest }, image.manifest, head);
      return;
    }
    const blob = image.blobs.get(ref);
    if (!blob) {
      error(res, 404, "BLOB_UNKNOWN", `blob ${ref} is not known here`, head);
      return;
    }
    const headers = { "Content-Type": "application/octet-stream", "Content-Length": blob.size, "Docker-Content-Digest": blob.digest };
    if (head || blob.bytes) {
      send(res, 200, headers, blob.bytes, head);
      return;
    }
    res.writeHead(200, { "Docker-Distribution-API-Version": "registry/2.0", ...headers });
    const e = blob.entry!;
    const stream = createReadStream(image.archive, { start: e.offset, end: e.offset + e.size - 1 });
    stream.on("error", (err) => res.destroy(err));
    stream.pipe(res);
  };
}

export interface RunningRegistry {
  port: number;
  /** The image reference to pull: localhost:<port>/<name>:<tag>. */
  ref: string;
  close(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as { port: number }).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

/** How many ports to try before giving up on one whose ::1 side is ours too. */
const LISTEN_ATTEMPTS = 20;

/**
 * Listen with `handler` on 127.0.0.1:`port` (any free one for 0) and on ::1 at the same port,
 * since a client may resolve "localhost" to either. Rejects with EADDRINUSE when ::1 at that
 * port is someone else's: any local user may listen there, and a puller that tries ::1
 * first would take its image for ours. Serves 127.0.0.1 alone only where the host has no
 * ::1, so nothing can answer there.
 */
export async function listenLoopback(handler: Handler, port: number): Promise<{ port: number; servers: Server[] }> {
  const v4 = createServer(handler);
  const bound = await listen(v4, port, "127.0.0.1");
  const v6 = createServer(handler);
  try {
    await listen(v6, bound, "::1");
    return { port: bound, servers: [v4, v6] };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EADDRNOTAVAIL" || code === "EAFNOSUPPORT") {
      log.debug(`registry: this host has no ::1 (${code}); serving 127.0.0.1:${bound} only`);
      return { port: bound, servers: [v4] };
    }
    await closeServer(v4);
    throw Object.assign(new Error(`::1 port ${bound} is taken by another process (${code}), which would answer pulls from localhost:${bound}`), { code, cause: e });
  }
}

/** Serve the image on localhost (127.0.0.1 and ::1, one port) on a port free on both. */
export async function serveRegistry(opts: RegistryOptions): Promise<RunningRegistry> {
  const handler = createRegistryHandler(opts);
  let servers: Server[] | null = null;
  let port = 0;
  let last: Error | null = null;
  for (let attempt = 0; attempt < LISTEN_ATTEMPTS && !servers; attempt++) {
    try {
      ({ port, servers } = await listenLoopback(handler, 0));
    } catch (e) {
      last = e as Error;
      if ((e as NodeJS.ErrnoException).code !== "EADDRINUSE") break;
      log.debug(`registry: ${last.message}; trying another port`);
    }
  }
  if (!servers) {
    const inUse = (last as NodeJS.ErrnoException | null)?.code === "EADDRINUSE";
    const hint = inUse ? `, and so were the ${LISTEN_ATTEMPTS - 1} ports tried before it: see who holds ports on ::1 (\`ss -6ltnp\`, \`lsof -iTCP@[::1]\`)` : "";
    throw new BbError("PACK", `Cannot start the loopback registry for ${opts.name}: ${last?.message}${hint}`, { cause: last });
  }
  log.debug(`registry: serving ${opts.name}:${opts.tag} (${opts.image.manifestDigest}) on localhost:${port}`);
  const held = servers;
  return {
    port,
    ref: `localhost:${port}/${opts.name}:${opts.tag}`,
    close: async () => {
      await Promise.all(held.map(closeServer));
    },
  };
}
