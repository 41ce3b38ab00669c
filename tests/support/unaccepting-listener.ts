// Test helper: a port on 127.0.0.1 whose connects hang, as a dial to a host that drops
// SYNs does, without aiming anything off this machine. A process listens with a backlog of
// one and never accepts (unaccepting-listener-process.ts); two connections fill its accept
// queue (Linux queues backlog + 1), and the kernel then drops every further SYN, so the
// next connect neither succeeds nor fails until the OS gives up, minutes later.
import type { Buffer } from "node:buffer";
import type { ChildProcess } from "node:child_process";
import net from "node:net";
import process from "node:process";
import { start } from "../../lib/proc.ts";
import { REPO_ROOT, signalPid, tsNodeArgv } from "./daemon-process.ts";

interface UnacceptingListener {
  port: number;
  close(): Promise<void>;
}

/** Why the staging cannot work here (false on Linux). */
export const NO_HANGING_CONNECT = process.platform !== "linux" && `a full accept queue drops SYNs only as Linux does (this is ${process.platform})`;

const QUEUE_SLOTS = 2;
const FILL_TIMEOUT_MS = 10_000;

function connected(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`filling the accept queue: connection to 127.0.0.1:${port} not made within ${FILL_TIMEOUT_MS} ms`));
    }, FILL_TIMEOUT_MS);
    s.once("connect", () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export async function startUnacceptingListener(): Promise<UnacceptingListener> {
  const child: ChildProcess = start(tsNodeArgv(`${REPO_ROOT}tests/support/unaccepting-listener-process.ts`, []), { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.includes("\n")) resolve(Number(out.split("\n")[0]));
    });
    child.once("exit", (c) => reject(new Error(`unaccepting listener exited ${c} before printing its port`)));
  });
  const fillers: net.Socket[] = [];
  const close = async () => {
    for (const s of fillers) s.destroy();
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once("exit", r));
    signalPid(child, "SIGKILL");
    await gone;
  };
  try {
    for (let i = 0; i < QUEUE_SLOTS; i++) fillers.push(await connected(port));
  } catch (e) {
    await close();
    throw e;
  }
  return { port, close };
}
