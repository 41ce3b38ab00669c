// The keep-alive load generator: N connections, each sending one request at a time and
// waiting for the whole response, for a warm-up and then a fixed measuring window.
// Responses are parsed as they stream in and the body is only counted, never copied, so
// a 1 MiB body costs the client its TLS decryption and little else.
import { Buffer } from "node:buffer";
import { performance } from "node:perf_hooks";
import type tls from "node:tls";
import type { Dialer } from "./dial.ts";

interface Expect {
  status: number;
  bodyBytes: number;
  /** A response header that must carry this value (lower-case name). */
  header?: { name: string; value: string };
}

interface LoadOptions {
  dial: Dialer;
  /** One complete HTTP/1.1 request, sent as is for every round trip. */
  request: Buffer;
  expect: Expect;
  connections: number;
  warmupMs: number;
  durationMs: number;
  /** Called as the measuring window opens and as it closes (for CPU accounting). */
  onWindow?: (edge: "open" | "close") => void;
  signal?: AbortSignal;
}

interface LoadResult {
  /** Latency (ms) of each request that completed inside the measuring window. */
  latenciesMs: number[];
  seconds: number;
}

/** A response stalled this long fails the cell instead of hanging the run. */
const STALL_MS = 15_000;
const MAX_HEAD = 64 * 1024;
const HEAD_END = Buffer.from("\r\n\r\n");

/** One keep-alive session that runs request/response round trips. */
class Session {
  private head: Buffer = Buffer.alloc(0);
  private remaining = -1; // body bytes still due; -1 while reading the head
  private pending: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;

  constructor(
    readonly socket: tls.TLSSocket,
    private readonly expect: Expect,
  ) {
    socket.setTimeout(STALL_MS, () => socket.destroy(new Error(`no response byte for ${STALL_MS / 1000}s`)));
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (e) => this.fail(e));
    socket.on("close", () => this.fail(new Error("the server closed the keep-alive connection")));
  }

  roundTrip(request: Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(request);
    });
  }

  private fail(e: Error) {
    this.failure ??= e;
    const p = this.pending;
    this.pending = null;
    p?.reject(this.failure);
  }

  private onData(chunk: Buffer) {
    if (this.remaining < 0) {
      this.head = this.head.length ? Buffer.concat([this.head, chunk]) : chunk;
      const end = this.head.indexOf(HEAD_END);
      if (end === -1) {
        if (this.head.length > MAX_HEAD) this.socket.destroy(new Error("response head over 64 KiB"));
        return;
      }
      const problem = this.checkHead(this.head.subarray(0, end).toString("latin1"));
      if (problem) return void this.socket.destroy(new Error(problem));
      chunk = this.head.subarray(end + 4);
      this.head = Buffer.alloc(0);
      this.remaining = this.expect.bodyBytes;
    }
    if (chunk.length > this.remaining) return void this.socket.destroy(new Error(`response body longer than its ${this.expect.bodyBytes} bytes`));
    this.remaining -= chunk.length;
    if (this.remaining > 0) return;
    this.remaining = -1;
    const p = this.pending;
    this.pending = null;
    p?.resolve();
  }

  /** Why this response head is not the one expected, or undefined when it is. */
  private checkHead(text: string): string | undefined {
    const lines = text.split("\r\n");
    const status = Number(lines[0]!.split(" ")[1]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const i = line.indexOf(":");
      headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
    }
    const { expect } = this;
    if (status !== expect.status) return `status ${status}, expected ${expect.status}: ${text.slice(0, 300)}`;
    // The client counts body bytes by content-length only; every hop today keeps it.
    if (headers.get("content-length") !== String(expect.bodyBytes)) {
      return `content-length ${headers.get("content-length") ?? "(none)"}, expected ${expect.bodyBytes}${headers.has("transfer-encoding") ? " (chunked)" : ""}`;
    }
    if (expect.header && headers.get(expect.header.name) !== expect.header.value) {
      return `header ${expect.header.name}: ${headers.get(expect.header.name) ?? "(absent)"}, expected ${expect.header.value}`;
    }
    return undefined;
  }
}

/** Run one cell: dial every connection, warm up, then measure for `durationMs`. */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const sockets: tls.TLSSocket[] = [];
  const timers: ReturnType<typeof setTimeout>[] = [];
  const stopAll = () => {
    timers.forEach(clearTimeout);
    sockets.forEach((s) => s.destroy());
  };
  o.signal?.addEventListener("abort", stopAll, { once: true });
  try {
    for (let i = 0; i < o.connections; i++) sockets.push(await o.dial());
    const sessions = sockets.map((s) => new Session(s, o.expect));
    const latenciesMs: number[] = [];
    const from = performance.now() + o.warmupMs;
    const until = from + o.durationMs;
    if (o.onWindow) {
      const onWindow = o.onWindow;
      timers.push(setTimeout(() => onWindow("open"), o.warmupMs), setTimeout(() => onWindow("close"), o.warmupMs + o.durationMs));
    }
    await Promise.all(
      sessions.map(async (s) => {
        for (;;) {
          const t0 = performance.now();
          await s.roundTrip(o.request);
          const t1 = performance.now();
          if (t1 >= until) return;
          if (t1 >= from) latenciesMs.push(t1 - t0);
        }
      }),
    );
    return { latenciesMs, seconds: o.durationMs / 1000 };
  } catch (e) {
    if (o.signal?.aborted) throw o.signal.reason;
    throw e;
  } finally {
    o.signal?.removeEventListener("abort", stopAll);
    stopAll();
  }
}
