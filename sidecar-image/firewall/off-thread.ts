// Large request bodies and WebSocket messages are scanned on a worker thread: a scan runs
// at ~10-20 ms per MiB, and on the event loop a 16 MiB upload (64 MiB once inflated) would
// hold every other request of the bottle, and the answers streaming back, for up to a
// second. The worker starts on the first large body (idle memory stays as it was) and
// holds the process open only while it has work. Should it fail to start or die, the body
// is scanned here instead: never forwarded unscanned.
import { Buffer } from "node:buffer";
import { Worker } from "node:worker_threads";
import type { Finding, Scanner, ScannerOptions } from "../../lib/dlp/mod.ts";
import type { Logger } from "../../lib/log.ts";

/** Bodies from this size on are scanned off the event loop (~10-20 ms of scanning). */
export const OFF_THREAD_BYTES = 1024 * 1024;

export interface ScanJob {
  id: number;
  options: ScannerOptions;
  texts: Uint8Array[];
}

export interface ScanResult {
  id: number;
  finding: Finding | null;
}

export interface OffThreadScanner {
  /** The first finding in `texts` (each read as latin1) by the scanner `options` make;
   * `inline` is that same scanner, used when the worker cannot be. */
  scan(options: ScannerOptions, inline: Scanner, texts: Buffer[]): Promise<Finding | null>;
  close(): void;
}

// From source the worker is scan-worker.ts beside this file; bundled, its own file beside
// firewall.js (tsup.config.ts).
const WORKER_URL = import.meta.url.endsWith(".ts") ? new URL("./scan-worker.ts", import.meta.url) : new URL("./firewall-scan-worker.js", import.meta.url);

/** A worker on `url`. From source under node, tsx's hooks do not reach worker threads, so
 * the worker registers them before it loads the .ts file (deno runs TypeScript itself). */
function spawn(url: URL): Worker {
  if (!url.pathname.endsWith(".ts") || "Deno" in globalThis) return new Worker(url);
  const tsx = import.meta.resolve("tsx/esm/api");
  return new Worker(`import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`, { eval: true });
}

/** The first finding in `texts`, each read as latin1 (one char per byte), on this thread. */
export function scanHere(scanner: Scanner, texts: Buffer[]): Finding | null {
  for (const t of texts) {
    const f = scanner.scan(t.toString("latin1"));
    if (f) return f;
  }
  return null;
}

/** `log` takes a line per body the worker fails to scan: a rate-limited one (lib/log-limit.ts). */
export function createOffThreadScanner(log: Pick<Logger, "warn">, workerUrl: URL = WORKER_URL): OffThreadScanner {
  let worker: Worker | null = null;
  let nextId = 0;
  const pending = new Map<number, { resolve: (f: Finding | null) => void; reject: (e: Error) => void }>();

  function failAll(e: Error) {
    worker = null;
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  }

  function started(): Worker {
    if (worker) return worker;
    const w = spawn(workerUrl);
    // It holds the process open only while it has work: an idle firewall exits as before.
    w.unref();
    w.on("message", (r: ScanResult) => {
      const p = pending.get(r.id);
      pending.delete(r.id);
      if (pending.size === 0) w.unref();
      p?.resolve(r.finding);
    });
    w.on("error", (e) => {
      if (worker === w) failAll(e);
    });
    w.on("exit", (code) => {
      if (worker === w) failAll(new Error(`the scan worker exited (code ${code})`));
    });
    return (worker = w);
  }

  return {
    async scan(options, inline, texts) {
      try {
        const w = started();
        // Copies of just these bytes, handed over whole (a Buffer may be a view of a larger one).
        const copies = texts.map((t) => new Uint8Array(t));
        return await new Promise<Finding | null>((resolve, reject) => {
          const id = nextId++;
          if (pending.size === 0) w.ref();
          pending.set(id, { resolve, reject });
          w.postMessage({ id, options, texts: copies } satisfies ScanJob, copies.map((c) => c.buffer));
        });
      } catch (e) {
        log.warn(`scanning a large body or message on the firewall's own thread: the scan worker failed (${(e as Error).message})`);
        return scanHere(inline, texts);
      }
    },
    close() {
      const w = worker;
      failAll(new Error("the firewall is closing"));
      void w?.terminate();
    },
  };
}
