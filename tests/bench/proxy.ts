// `bench proxy`: requests/s and p50/p99 latency for a small and a 1 MiB response over
// keep-alive HTTPS on loopback, direct to the upstream, through the firewall alone,
// through firewall→egress (credential injected), through a two-hop mitmdump chain (the
// proxy the original used) as the baseline, and through two bare TLS relays as the floor
// any two-hop intercepting design pays; then our chain's ratios against the
// targets (≥ 3× the mitmdump chain's throughput, < 1 ms added p50) and the proxies' memory.
// Every cell runs for a fixed time, so the run is bounded and stops by itself.
import os from "node:os";
import process from "node:process";
import { Buffer } from "node:buffer";
import { Command, interruptSignal, Option, writeStdout } from "../../lib/cli.ts";
import { BbError, exitTableText } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { runLoad } from "./lib/load.ts";
import { cpuMsOf } from "./lib/procs.ts";
import { summarize } from "./lib/stats.ts";
import { BODIES, type Body, CREDENTIAL_HEADER } from "./lib/upstream.ts";
import { type Cell, formatReport, type ProxyBenchResult, ratios, TARGETS } from "./proxy-report.ts";
import { type DaemonMode, type Rig, type Row, startRig } from "./proxy-rig.ts";

interface ProxyBenchOptions {
  durationS: number;
  warmupS: number;
  connections: number[];
  mitmdump: boolean;
  daemons: DaemonMode;
  signal?: AbortSignal;
}

/** What the agent's API calls look like: a small JSON POST carrying a placeholder credential. */
function requestFor(body: Body): Buffer {
  const json = '{"model":"bench","messages":[{"role":"user","content":"hello"}]}';
  return Buffer.from(
    `POST ${body.path} HTTP/1.1\r\nhost: api.example.test\r\nauthorization: Bearer bb-placeholder\r\n` +
      `content-type: application/json\r\ncontent-length: ${json.length}\r\n\r\n${json}`,
  );
}

/** CPU ms the given processes have used so far, summed; null where /proc cannot say. */
async function cpuMs(pids: number[]): Promise<number | null> {
  const each = await Promise.all(pids.map(cpuMsOf));
  return each.some((x) => x === undefined) ? null : each.reduce((a: number, b) => a + b!, 0);
}

async function measure(rig: Rig, o: ProxyBenchOptions): Promise<Cell[]> {
  const cells: Cell[] = [];
  for (const body of BODIES) {
    for (const connections of o.connections) {
      for (const row of rig.rows) {
        let open: Promise<number | null> | undefined;
        let close: Promise<number | null> | undefined;
        const r = await runLoad({
          dial: row.dial,
          request: requestFor(body),
          expect: { status: 200, bodyBytes: body.bytes, header: { name: CREDENTIAL_HEADER, value: row.credential } },
          connections,
          warmupMs: o.warmupS * 1000,
          durationMs: o.durationS * 1000,
          onWindow: (edge) => {
            if (edge === "open") open = cpuMs(row.pids);
            else close = cpuMs(row.pids);
          },
          signal: o.signal,
        }).catch((e: unknown) => {
          if (o.signal?.aborted) throw e;
          throw new BbError("INTERNAL", `${row.label}, ${body.name} response, ${connections} connection(s): ${(e as Error).message}`, { cause: e });
        });
        const s = summarize(r.latenciesMs, r.seconds);
        if (s.requests === 0) throw new BbError("INTERNAL", `${row.label}, ${body.name} response: no request completed in ${o.durationS} s`);
        close ??= cpuMs(row.pids);
        const [before, after] = await Promise.all([open, close]);
        // The proxies' CPU per request over the measuring window: what each design costs,
        // apart from how the machine's cores happen to be shared.
        const proxyCpuMs = row.pids.length && before != null && after != null ? (after - before) / s.requests : null;
        const cpuNote = proxyCpuMs === null ? "" : `, proxy CPU ${proxyCpuMs.toFixed(2)} ms/req`;
        log.step(`${body.name}, ${connections} conn, ${row.label}: ${s.rps.toFixed(0)} req/s, p50 ${s.p50Ms.toFixed(2)} ms${cpuNote}`);
        cells.push({ row: row.id, body: body.name, bodyBytes: body.bytes, connections, requests: s.requests, rps: s.rps, p50Ms: s.p50Ms, p99Ms: s.p99Ms, proxyCpuMs });
      }
    }
  }
  return cells;
}

/** Run the whole benchmark once and return its result (the caller prints it). */
async function benchProxy(o: ProxyBenchOptions): Promise<ProxyBenchResult> {
  log.step("starting the upstream, the daemons and the mitmdump chain on 127.0.0.1");
  const rig = await startRig({ daemons: o.daemons, mitmdump: o.mitmdump, signal: o.signal });
  try {
    const cellCount = BODIES.length * o.connections.length * rig.rows.length;
    log.step(`daemons from ${rig.daemons === "dist" ? "dist/sidecar bundles" : "sources (tsx)"}; ${cellCount} cells, about ${Math.ceil(cellCount * (o.durationS + o.warmupS))} s`);
    for (const s of rig.skipped) log.warn(`${s.label} row skipped: ${s.reason}`);
    const cells = await measure(rig, o);
    const now = await rig.memoryNow();
    return {
      daemons: rig.daemons,
      ...(rig.staleNote ? { staleNote: rig.staleNote } : {}),
      node: process.version,
      cpus: os.availableParallelism?.() ?? os.cpus().length,
      durationS: o.durationS,
      warmupS: o.warmupS,
      connections: o.connections,
      bodies: BODIES.map((b) => ({ name: b.name, bytes: b.bytes })),
      rows: rig.rows.map((r: Row) => ({ id: r.id, label: r.label })),
      skipped: rig.skipped,
      cells,
      targets: TARGETS,
      ratios: ratios(cells, BODIES, o.connections),
      memory: rig.idle.map((m, i) => ({ name: m.name, idleRssKiB: m.memory?.rssKiB ?? null, peakRssKiB: now[i]?.memory?.peakKiB ?? null })),
    };
  } finally {
    await rig.close();
  }
}

function seconds(flag: string) {
  return (text: string) => {
    const n = Number(text);
    if (!Number.isFinite(n) || n <= 0 || n > 600) throw new BbError("USAGE", `${flag} wants seconds between 0 and 600, got ${JSON.stringify(text)}`);
    return n;
  };
}

function connectionList(text: string): number[] {
  const list = text.split(",").map((s) => Number(s.trim()));
  if (!list.length || list.some((n) => !Number.isInteger(n) || n < 1 || n > 256)) {
    throw new BbError("USAGE", `--connections wants a comma-separated list of counts from 1 to 256, got ${JSON.stringify(text)}`);
  }
  return [...new Set(list)];
}

export function proxyCommand(): Command {
  return new Command("proxy")
    .description("Throughput and latency of firewall, firewall→egress, a mitmdump chain and a bare TLS relay floor against direct, on loopback.")
    .option("--duration <seconds>", "measuring time per cell", seconds("--duration"), 3)
    .option("--warmup <seconds>", "unmeasured warm-up per cell", seconds("--warmup"), 0.5)
    .addOption(new Option("--connections <list>", "concurrent keep-alive connections, one column group each").argParser(connectionList).default([1, 8], "1,8"))
    .option("--daemons <mode>", "auto (dist bundles when built, else sources), dist or source", "auto")
    .option("--no-mitmdump", "leave out the mitmdump chain row (and the throughput ratio)")
    .option("--json", "print the result as JSON on stdout instead of the tables")
    .addHelpText("after", `\nExample:\n  just bench proxy --duration 2 --connections 1,4\n\nA missed target is reported (MISS), never an exit code.\n\n${exitTableText()}\n`)
    .action(async (f: { duration: number; warmup: number; connections: number[]; daemons: string; mitmdump: boolean; json?: boolean }) => {
      if (!["auto", "dist", "source"].includes(f.daemons)) throw new BbError("USAGE", `--daemons wants auto, dist or source, got ${JSON.stringify(f.daemons)}`);
      const result = await benchProxy({
        durationS: f.duration,
        warmupS: f.warmup,
        connections: f.connections,
        mitmdump: f.mitmdump,
        daemons: f.daemons as DaemonMode,
        signal: interruptSignal(),
      });
      await writeStdout(f.json ? `${JSON.stringify(result, null, 2)}\n` : formatReport(result));
    });
}
