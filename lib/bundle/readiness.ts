// Waiting until each daemon in the bundle answers on its port. The check runs inside the
// bundle (docker exec + node), because egress listens on the bundle's loopback only and
// the internal network is not reachable from every host (Docker Desktop).
import { BbError } from "../errors.ts";
import { docker } from "../docker/cmd.ts";
import { inspectContainer } from "../docker/inspect.ts";
import { PORTS } from "../layout.ts";
import type { Service } from "../plan/schema.ts";

const PROBE = `const net=require("net");const want=JSON.parse(process.argv[1]);const out={};let left=want.length;
for(const [name,host,port] of want){const s=net.connect(port,host);const fin=(ok)=>{if(name in out)return;out[name]=ok;s.destroy();if(--left===0)console.log(JSON.stringify(out));};
s.setTimeout(700,()=>fin(false));s.on("connect",()=>fin(true));s.on("error",()=>fin(false));}`;

const TARGETS: Record<Service, [string, number]> = {
  firewall: ["127.0.0.1", PORTS.firewall],
  egress: ["127.0.0.1", PORTS.egress],
  "git-gate": ["127.0.0.1", PORTS.gitGate],
  supervise: ["127.0.0.1", PORTS.supervise],
};

export async function waitForDaemons(opts: { container: string; slug: string; services: Service[]; timeoutMs: number; signal?: AbortSignal; onProgress?: (up: Service[]) => void }): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  const want = opts.services.map((s) => [s, ...TARGETS[s]]);
  let up: Record<string, boolean> = {};
  let reported = -1;
  while (true) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const info = await inspectContainer(opts.container);
    if (!info || !info.state.running) {
      throw new BbError("BUNDLE", `Cannot start bundle for ${opts.slug}: container ${opts.container} ${info ? `exited with code ${info.state.exitCode}` : "disappeared"}${await logTail(opts.container)}`);
    }
    const r = await docker(["exec", opts.container, "node", "-e", PROBE, JSON.stringify(want)], { expect: [0, 1, 126, 127] });
    if (r.code === 0 && r.stdout.trim()) up = JSON.parse(r.stdout.trim().split("\n").pop()!);
    const ready = opts.services.filter((s) => up[s]);
    if (ready.length !== reported) {
      reported = ready.length;
      opts.onProgress?.(ready);
    }
    if (ready.length === opts.services.length) return;
    if (Date.now() > deadline) {
      const missing = opts.services.filter((s) => !up[s]);
      const first = missing[0]!;
      throw new BbError(
        "TIMEOUT",
        `Cannot start bundle for ${opts.slug}: daemon ${first} did not answer on ${TARGETS[first][1]} within ${Math.round(opts.timeoutMs / 1000)}s` +
          (missing.length > 1 ? ` (also not up: ${missing.slice(1).join(", ")})` : "") +
          `${await logTail(opts.container)}`,
        { details: { missing } },
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function logTail(container: string): Promise<string> {
  const r = await docker(["logs", "--tail", "15", container], { expect: [0, 1] }).catch(() => null);
  const text = r ? (r.stdout + r.stderr).trim() : "";
  return text ? `\nlast bundle log lines:\n${text}` : "";
}
