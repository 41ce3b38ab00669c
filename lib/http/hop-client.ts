// A keep-alive HTTP/1.1 client to one fixed peer: the firewall's next hop (egress), and
// each upstream origin egress, or the firewall without a next hop, dials
// (lib/http/origin-pools.ts, over TLS through `dial`). It also notices, in node and deno
// alike, a pooled connection closed under a request (for lib/http/retry.ts).
// It exists for speed: node's http client copies every body chunk out of its parser and
// the answer then streams through IncomingMessage, which cost the firewall about as much
// per MiB relayed as its TLS did, and egress about a tenth of its CPU per MiB. Here the
// head is parsed by hand (response-head.ts) and the body's bytes are passed on as the
// socket delivers them, framing taken off (body-framing.ts). The events mirror
// http.ClientRequest's ("response", "error", "finish", "close", reusedSocket) so
// lib/http/retry.ts and lib/http/upstream-deadlines.ts apply. Upgrades are not for this
// client: they go through node's, which hands the socket over.
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import type http from "node:http";
import net from "node:net";
import { Readable } from "node:stream";
import { ChunkedDecoder, type Framing, framingOf, informational } from "./body-framing.ts";
import { tcpDial } from "./dial.ts";
import { RELAY_HIGH_WATER_MARK } from "./limits.ts";
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
  /**
   * A body held whole (sent with its Content-Length), or one still arriving, sent as the
   * headers frame it: as it comes under a Content-Length, chunk by chunk under a
   * Transfer-Encoding that lists chunked; with neither there is no body to send.
   */
  body?: Buffer | Readable;
}

interface HopClientOptions {
  /** How a connection is opened (default: TCP to the peer, tcpDial's connect timeout). */
  dial?: () => Promise<net.Socket>;
  /** Who the peer is in the errors of an answer it framed wrongly: the text reaches the
   * agent after "cannot reach HOST: ", so it says whom to blame (default "the upstream";
   * the firewall's client to egress says "the next hop"). */
  peer?: string;
}

export interface HopClient {
  request(init: HopRequestInit): HopRequest;
  /** How many connections wait in the pool. */
  idle(): number;
  /** Close the idle connections; requests under way keep theirs, and close them when done. */
  close(): void;
}

const MAX_FREE_SOCKETS = 256;
/** Body bytes held for a connection not yet open before the body is paused. */
const UPLOAD_QUEUE_BYTES = 64 * 1024;
const CRLF = Buffer.from("\r\n");
const EMPTY = Buffer.alloc(0);
const LAST_CHUNK = Buffer.from("0\r\n\r\n");

function codedError(message: string, code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

/** How a streamed body goes out: as it comes, chunk-encoded, or not at all (no framing header). */
type UploadFraming = "length" | "chunked" | "none";

function uploadFraming(headers: http.OutgoingHttpHeaders): UploadFraming {
  const te = headers["transfer-encoding"];
  // As node's ClientRequest decides: a chunked coding anywhere in the list.
  if (te !== undefined && /(?:^|\W)chunked(?:$|\W)/i.test(String(te))) return "chunked";
  return headers["content-length"] !== undefined ? "length" : "none";
}

/** The request head; throws on a name or value that would break out of its line (as node's ClientRequest does). */
function requestHead(init: HopRequestInit): string {
  if (!TOKEN.test(init.method) || /[\s]/.test(init.target) || !init.target) throw codedError(`invalid request line ${JSON.stringify(`${init.method} ${init.target}`)}`, "ERR_INVALID_CHAR");
  let head = `${init.method} ${init.target} HTTP/1.1\r\n`;
  const headers = { ...init.headers, connection: "keep-alive" };
  // A body held whole goes with its length, whatever framing it came in with.
  if (Buffer.isBuffer(init.body)) {
    delete headers["transfer-encoding"];
    headers["content-length"] = init.body.length;
  }
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
  #buf: Buffer = EMPTY;
  #head: ResponseHead | null = null;
  #framing: Framing = { kind: "none" };
  #left = 0; // body bytes still due (length framing)
  #chunked: ChunkedDecoder | null = null;
  #body: Readable | null = null;
  #finished = false;
  // The request's own body when it streams: what waits for the connection, and whether all of it is in.
  #upload: Readable | null = null;
  #uploadChunked = false;
  #queued: Buffer[] = [];
  #queuedBytes = 0;
  #uploaded = true;
  readonly #onData = (chunk: Buffer) => this.#data(chunk);
  readonly #onEnd = () => this.#ended();
  readonly #onError = (e: Error) => this.#fail(e);
  readonly #onDrain = () => this.#upload?.resume();
  readonly #onUploadData = (chunk: Buffer) => this.#sendBody(chunk);
  readonly #onUploadEnd = () => this.#sendBodyEnd();

  constructor(
    private readonly method: string,
    private readonly release: (socket: net.Socket, reusable: boolean) => void,
    private readonly peer = "the upstream",
  ) {
    super();
  }

  /** Take the body from `from` as it arrives, chunk-encoded or as it is; it waits for the connection (paused past a bound). */
  stream(from: Readable, chunked: boolean): void {
    this.#upload = from;
    this.#uploadChunked = chunked;
    this.#uploaded = false;
    from.on("data", this.#onUploadData);
    from.once("end", this.#onUploadEnd);
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
    socket.on("drain", this.#onDrain);
    const queued = this.#queued;
    this.#queued = [];
    this.#queuedBytes = 0;
    if (this.#uploaded) {
      this.#write(Buffer.concat([wire, ...queued]), true);
    } else {
      socket.write(queued.length ? Buffer.concat([wire, ...queued]) : wire);
      this.#upload!.resume();
    }
    socket.resume();
  }

  /** The connection could not be opened. */
  failed(e: Error): void {
    if (!this.#finished) this.#fail(e);
  }

  /** Abandon the request (failing it with `e` when given); its connection is closed, not reused. */
  destroy(e?: Error): void {
    if (this.#finished) return;
    if (e) return this.#fail(e);
    this.#finish(false);
    if (this.#body && !this.#body.destroyed) this.#body.destroy();
  }

  /** Bytes of the request onto the connection; "finish" once the last of them is flushed. */
  #write(bytes: Buffer, last: boolean): boolean {
    const socket = this.#socket!;
    if (!last) return socket.write(bytes);
    return socket.write(bytes, (e) => void (e || this.emit("finish")));
  }

  #sendBody(chunk: Buffer): void {
    if (this.#finished || !chunk.length) return; // an empty chunk would end a chunked body
    const bytes = this.#uploadChunked ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`, "latin1"), chunk, CRLF]) : chunk;
    if (this.#socket) {
      if (!this.#write(bytes, false)) this.#upload!.pause();
      return;
    }
    // Copied: the stream's buffer may be reused once this handler returns.
    this.#queued.push(bytes === chunk ? Buffer.from(chunk) : bytes);
    this.#queuedBytes += bytes.length;
    if (this.#queuedBytes >= UPLOAD_QUEUE_BYTES) this.#upload!.pause();
  }

  #sendBodyEnd(): void {
    this.#uploaded = true;
    this.#stopUpload();
    if (this.#finished) return;
    const end = this.#uploadChunked ? LAST_CHUNK : Buffer.alloc(0);
    if (this.#socket) this.#write(end, true);
    else if (end.length) this.#queued.push(end);
  }

  #stopUpload(): void {
    const from = this.#upload;
    if (!from) return;
    this.#upload = null;
    from.off("data", this.#onUploadData).off("end", this.#onUploadEnd);
    // An answer before the whole body (a 413): the rest is read and dropped, so the
    // connection it comes on is not left stalled behind it.
    if (!this.#uploaded) from.resume();
  }

  #data(chunk: Buffer): void {
    if (this.#finished) return;
    if (!this.#head) {
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
      for (;;) {
        const read = readResponseHead(this.#buf);
        if (read.kind === "need") return;
        if (read.kind === "bad") return this.#fail(codedError(`${this.peer} sent ${read.reason}`, "HPE_INVALID"));
        this.#buf = this.#buf.subarray(read.length);
        if (read.head.status === 101) return this.#fail(codedError(`${this.peer} switched protocols on a plain request`, "HPE_INVALID"));
        if (!informational(read.head.status)) {
          this.#respond(read.head);
          break;
        }
        // 1xx: informational, another head follows.
      }
      chunk = this.#buf;
      this.#buf = EMPTY;
      if (this.#finished || !this.#complete(chunk)) return;
    } else {
      this.#complete(chunk);
    }
  }

  #respond(head: ResponseHead): void {
    const framing = framingOf(this.method, head);
    if (framing.kind === "bad") return this.#fail(codedError(`${this.peer} sent ${framing.reason}`, "HPE_INVALID"));
    this.#head = head;
    this.#framing = framing;
    if (framing.kind === "length") this.#left = framing.bytes;
    if (framing.kind === "chunked") this.#chunked = new ChunkedDecoder();
    const socket = this.#socket!;
    // Only while the socket is still this request's: a late read must not resume it under the next one.
    this.#body = new Readable({
      highWaterMark: RELAY_HIGH_WATER_MARK,
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
    const body = this.#body!;
    let room = true;
    let rest: Buffer = EMPTY;
    let done = false;
    // Per chunk of a MiB answer this runs 64 times in each daemon: no arrays, no copies.
    if (f.kind === "none") {
      done = true;
      rest = chunk;
    } else if (f.kind === "length") {
      const left = this.#left;
      if (chunk.length <= left) {
        if (chunk.length) room = body.push(chunk);
        this.#left = left - chunk.length;
      } else {
        if (left) room = body.push(chunk.subarray(0, left));
        rest = chunk.subarray(left);
        this.#left = 0;
      }
      done = this.#left === 0;
    } else if (f.kind === "chunked") {
      const d = this.#chunked!.push(chunk);
      if (!d.ok) {
        this.#fail(codedError(`${this.peer} sent a malformed chunked body: ${d.reason}`, "HPE_INVALID"));
        return false;
      }
      for (const piece of d.data) if (piece.length) room = body.push(piece);
      ({ done, rest } = d);
    } else if (chunk.length) {
      room = body.push(chunk);
    }
    if (!room && !done) this.#socket?.pause();
    if (!done) return true;
    // Bytes past the answer's end were never asked for, and a request not all sent would
    // leave its rest on the wire: either way the connection is not trusted again.
    this.#finish(rest.length === 0 && this.#uploaded && keepsAlive(this.#head!, f));
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
    this.#stopUpload();
    this.#queued = [];
    queueMicrotask(() => this.emit("close"));
    const socket = this.#socket;
    if (!socket) return;
    this.#socket = null;
    socket.off("data", this.#onData);
    socket.off("end", this.#onEnd);
    socket.off("close", this.#onEnd);
    socket.off("error", this.#onError);
    socket.off("drain", this.#onDrain);
    this.release(socket, reusable);
  }
}

/** A client of the peer `hop` (whose address `dial`, when given, connects to by its own means). */
export function createHopClient(hop: { host: string; port: number }, o: HopClientOptions = {}): HopClient {
  const dial = o.dial ?? (() => tcpDial(hop, { noDelay: true }));
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
      const whole = init.body === undefined || Buffer.isBuffer(init.body);
      const wire = Buffer.from(requestHead(init), "latin1");
      const all = Buffer.isBuffer(init.body) && init.body.length ? Buffer.concat([wire, init.body]) : wire;
      const req = new HopRequest(init.method.toUpperCase(), park, o.peer);
      if (!whole) {
        const framing = uploadFraming(init.headers);
        // No framing header, no body: the request ends with its head.
        if (framing !== "none") req.stream(init.body as Readable, framing === "chunked");
      }
      const idle = free.pop();
      if (idle) {
        unparkers.get(idle)!();
        queueMicrotask(() => req.attach(idle, true, all)); // the caller adds its listeners first
      } else {
        dial().then((s) => req.attach(s, false, all), (e: Error) => req.failed(e));
      }
      return req;
    },
    idle: () => free.length,
    close() {
      closed = true;
      for (const s of free.splice(0)) s.destroy();
    },
  };
}
