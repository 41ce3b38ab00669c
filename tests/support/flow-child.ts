// A start flow's children, read from /proc (Linux): tests that hold a flow at one of its
// steps find the tool's process this way and stop it (SIGSTOP), since every file the tool
// reads refuses to wait on a FIFO.
import { readdirSync, readFileSync } from "node:fs";

/** The child of `flow` whose command line names `tool` (from sh to node), if any yet. */
export function flowChild(flow: number, tool: string): number | null {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === flow && readFileSync(`/proc/${name}/cmdline`, "utf8").includes(tool)) return Number(name);
    } catch {
      // Gone meanwhile.
    }
  }
  return null;
}

/** The state letter of /proc/PID/stat ("T": stopped, as stop-after.mjs holds a tool), or
 * null once it is gone. */
export function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return null;
  }
}
