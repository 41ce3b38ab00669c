// The thread a large body is scanned on (see off-thread.ts): the same scanner as the
// firewall's own, built from the options each job carries, kept while they stay the same.
// Bundled as dist/sidecar/firewall-scan-worker.js, next to firewall.js.
import { Buffer } from "node:buffer";
import { parentPort } from "node:worker_threads";
import { createScanner, type Scanner } from "../../lib/dlp/mod.ts";
import { type ScanJob, type ScanResult, scanHere } from "./off-thread.ts";

let current: { key: string; scanner: Scanner } | null = null;

parentPort?.on("message", (job: ScanJob) => {
  const key = JSON.stringify(job.options);
  if (current?.key !== key) current = { key, scanner: createScanner(job.options) };
  const finding = scanHere(current.scanner, job.texts.map((t) => Buffer.from(t.buffer, t.byteOffset, t.byteLength)));
  parentPort!.postMessage({ id: job.id, finding } satisfies ScanResult);
});
