// A keep-alive HTTP/1.1 client to one fixed next hop (the firewall's egress), for plain
// requests whose body the caller holds whole. It exists for speed: node's http client
// copies every body chunk out of its parser and the answer then streams through
// IncomingMessage, which cost the firewall about as much per MiB relayed as its TLS did.
// Here the head is parsed by hand (response-head.ts) and the body's bytes are passed on
// as the socket delivers them, framing taken off (body-framing.ts). The events mirror
// http.ClientRequest's ("response", "error", reusedSocket) so lib/http/retry.ts applies.
// Upgrades are not for this client: they go through node's, which hands the socket over.
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import type http from "node:http";
import net from "node:net";
import { Readable } from "node:stream";
import { ChunkedDecoder, type Framing, framingOf } from "./body-framing.ts";
import { tcpDial } from "./dial.ts";
import { FIELD_VALUE, headerValues, readResponseHead, type ResponseHead, TOKEN } from "./response-head.ts";

export interface HopResponse {
  status: number;
  /** Flat [name, value, ...] as the hop sent them, framing headers included. */
  rawHeaders: string[];
  /** The body without its framing; errors when the hop breaks off or frames it wrongly. */
  body: Readable;
}

export interface HopRequestInit {
  method: string;
  /** The request-target as it goes on the request line (absolute form to a proxy). */
  target: string;
  headers: http.OutgoingHttpHeaders;
  body?: Buffer;
}

export interface HopClient {
  request(init: HopRequestInit): HopRequest;
  /** Close the idle connections; requests under way keep theirs. */
  close(): void;
}

const MAX_FREE_SOCKETS = 256;

function codedError(message: string, code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

/** The request head; throws on a name or value that would break out of its line (as node's ClientRequest does). */
function requestHead(init: HopRequestInit): string {
  if (!TOKEN.test(init.method) || /[\s]/.test(init.target) || !init.target) throw codedError(`invalid request line ${JSON.stringify(`${init.method} ${init.target}`)}`, "ERR_INVALID_CHAR");
  let head = `${init.method} ${init.target} HTTP/1.1\r\n`;
  const headers = { ...init.headers, connection: "keep-alive" };
  if (init.body) headers["content-length"] = init.body.length;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (!TOKEN.test(name)) throw codedError(`invalid header name ${JSON.stringify(name)}`, "ERR_INVALID_HTTP_TOKEN");
    for (const v of Array.isArray(value) ? value : [value]) {
      const text = String(v);
      if (!FIELD_VALUE.test(text)) throw codedError(`invalid character in header ${name}`, "ERR_INVALID_CHAR");
      head += `${name}: ${text}\r\n`;
    }
  }
  return `${head}\r\n`;
}

/** Whether the connection may carry another request after this answer. */
function keepsAlive(head: ResponseHead, framing: Framing): boolean {
  if (framing.kind === "close") return false;
  const tokens = headerValues(head.rawHeaders, "connection").flatMap((v) => v.toLowerCase().split(",").map((t) => t.trim()));
  return head.minor === 1 ? !tokens.includes("close") : tokens.includes("keep-alive");
}

/** One request and its answer on one connection. */
export class HopRequest extends EventEmitter {
  /** The connection carried an earlier request (lib/http/retry.ts). */
  reusedSocket = false;
  #socket: net.Socket | null = null;
  #buf: Buffer = Buffer.alloc(0);
  #head: ResponseHead | null = null;
  #framing: Framing = { kind: "none" };
  #left = 0; // body bytes still due (length framing)
  #chunked: ChunkedDecoder | null = null;
  #body: Readable | null = null;
  #finished = false;
  readonly #onData = (chunk: Buffer) => this.#data(chunk);
  readonly #onEnd = () => this.#ended();
  readonly #onError = (e: Error) => this.#fail(e);

  constructor(
    private readonly method: string,
    private readonly release: (socket: net.Socket, reusable: boolean) => void,
  ) {
    super();
  }

  /** Start on `socket`: write the request and read its answer. */
  attach(socket: net.Socket, reused: boolean, wire: Buffer): void {
    if (this.#finished) return this.release(socket, false);
    this.#socket = socket;
    this.reusedSocket = reused;
    socket.on("data", this.#onData);
    socket.on("end", this.#onEnd);
    socket.on("close", this.#onEnd);
    socket.on("error", this.#onError);
    socket.write(wire);
    socket.resume();
  }

  /** The connection could not be opened. */
  failed(e: Error): void {
    if (!this.#finished) this.#fail(e);
  }

  /** Abandon the request; its connection is closed, not reused. */
  destroy(): void {
    if (this.#finished) return;
    this.#finish(false);
    if (this.#body && !this.#body.destroyed) this.#body.destroy();
  }

  #data(chunk: Buffer): void {
    if (this.#finished) return;
    if (!this.#head) {
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
      for (;;) {
        const read = readResponseHead(this.#buf);
        if (read.kind === "need") return;
        if (read.kind === "bad") return this.#fail(codedError(`next hop sent ${read.reason}`, "HPE_INVALID"));
        this.#buf = this.#buf.subarray(read.length);
        if (read.head.status === 101) return this.#fail(codedError("next hop switched protocols on a plain request", "HPE_INVALID"));
        if (read.head.status >= 200) {
          this.#respond(read.head);
          break;
        }
        // 1xx: informational, another head follows.
      }
      chunk = this.#buf;
      this.#buf = Buffer.alloc(0);
      if (this.#finished || !this.#complete(chunk)) return;
    } else {
      this.#complete(chunk);
    }
  }

  #respond(head: ResponseHead): void {
    const framing = framingOf(this.method, head);
    if (framing.kind === "bad") return this.#fail(codedError(`next hop sent a ${framing.reason}`, "HPE_INVALID"));
    this.#head = head;
    this.#framing = framing;
    if (framing.kind === "length") this.#left = framing.bytes;
    if (framing.kind === "chunked") this.#chunked = new ChunkedDecoder();
    const socket = this.#socket!;
    // Only while the socket is still this request's: a late read must not resume it under the next one.
    this.#body = new Readable({
      read: () => void (this.#socket === socket && socket.resume()),
      // A body thrown away takes its request, and the connection, with it.
      destroy: (e, done) => {
        this.destroy();
        done(e);
      },
    });
    this.emit("response", { status: head.status, rawHeaders: head.rawHeaders, body: this.#body } satisfies HopResponse);
  }

  /** Body bytes in; true while more are due. */
  #complete(chunk: Buffer): boolean {
    const f = this.#framing;
    let data: Buffer[];
    let rest: Buffer = Buffer.alloc(0);
    let done = false;
    if (f.kind === "none") {
      done = true;
      rest = chunk;
      data = [];
    } else if (f.kind === "length") {
      const take = Math.min(this.#left, chunk.length);
      data = take ? [chunk.subarray(0, take)] : [];
      rest = chunk.subarray(take);
      this.#left -= take;
      done = this.#left === 0;
    } else if (f.kind === "chunked") {
      const d = this.#chunked!.push(chunk);
      if (!d.ok) {
        this.#fail(codedError(`next hop sent a malformed chunked body: ${d.reason}`, "HPE_INVALID"));
        return false;
      }
      ({ data, done, rest } = d);
    } else {
      data = [chunk];
    }
    const body = this.#body!;
    let room = true;
    for (const d of data) if (d.length) room = body.push(d);
    if (!room && !done) this.#socket?.pause();
    if (!done) return true;
    // Bytes past the answer's end were never asked for: the connection is not trusted again.
    this.#finish(rest.length === 0 && keepsAlive(this.#head!, f));
    body.push(null);
    return false;
  }

  #ended(): void {
    if (this.#finished) return;
    if (this.#head && this.#framing.kind === "close") {
      this.#finish(false);
      return void this.#body!.push(null);
    }
    this.#fail(codedError(this.#head ? "aborted" : "socket hang up", "ECONNRESET"));
  }

  #fail(e: Error): void {
    if (this.#finished) return;
    this.#finish(false);
    if (this.#body) this.#body.destroy(e);
    else this.emit("error", e);
  }

  #finish(reusable: boolean): void {
    this.#finished = true;
    const socket = this.#socket;
    if (!socket) return;
    this.#socket = null;
    socket.off("data", this.#onData);
    socket.off("end", this.#onEnd);
    socket.off("close", this.#onEnd);
    socket.off("error", this.#onError);
    this.release(socket, reusable);
  }
}

export function createHopClient(hop: { host: string; port: number }): HopClient {
  const free: net.Socket[] = [];
  const unparkers = new WeakMap<net.Socket, () => void>();
  let closed = false;

  function park(socket: net.Socket, reusable: boolean): void {
    if (!reusable || closed || socket.destroyed || free.length >= MAX_FREE_SOCKETS) return void socket.destroy();
    // Idle: anything the hop sends or a close now ends the connection, and it leaves the pool.
    const drop = () => {
      const at = free.indexOf(socket);
      if (at !== -1) free.splice(at, 1);
      socket.destroy();
    };
    socket.on("data", drop).on("end", drop).on("close", drop).on("error", drop);
    unparkers.set(socket, () => socket.off("data", drop).off("end", drop).off("close", drop).off("error", drop));
    socket.resume();
    free.push(socket);
  }



  return {
    request(init) {
      const wire = Buffer.from(requestHead(init), "latin1");
      const all = init.body?.length ? Buffer.concat([wire, init.body]) : wire;
      const req = new HopRequest(init.method.toUpperCase(), park);
      const idle = free.pop();
      if (idle) {
        unparkers.get(idle)!();
        queueMicrotask(() => req.attach(idle, true, all)); // the caller adds its listeners first
      } else {
        tcpDial(hop, { noDelay: true }).then((s) => req.attach(s, false, all), (e: Error) => req.failed(e));
      }
      return req;
    },
    close() {
      closed = true;
      for (const s of free.splice(0)) s.destroy();
    },
  };
}
