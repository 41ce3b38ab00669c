// Whether this process runs under another (is its child, grandchild, ...): how bb-prepare
// --put-back tells the start flow's own teardown (flow.sh runs it, through setsid or
// own-session.pl) from a hand run naming that flow.
import { existsSync } from "node:fs";
import process from "node:process";
import { ANY_EXIT, run } from "../proc.ts";
import { procStatField } from "./owner.ts";

/** True when `pid` is one of this process's ancestors. */
export async function runsUnder(pid: number): Promise<boolean> {
  // A bound on the walk: a chain that long is not the start flow's.
  for (let p: number | null = process.ppid, hops = 0; p !== null && p > 1 && hops < 64; hops++) {
    if (p === pid) return true;
    p = await parentOf(p);
  }
  return false;
}

/** The parent of `pid` (field 4 of /proc/<pid>/stat; ps(1) without procfs), or null once it is gone. */
async function parentOf(pid: number): Promise<number | null> {
  if (existsSync("/proc/self/stat")) {
    const ppid = procStatField(pid, 4);
    return ppid === null ? null : Number(ppid);
  }
  const r = await run(["ps", "-o", "ppid=", "-p", String(pid)], { expect: ANY_EXIT });
  return r.code === 0 && /^\s*\d+\s*$/.test(r.stdout) ? Number(r.stdout) : null;
}
