// Time limits for the connections the firewall serves itself (intercepted tunnels are
// handed to an http.Server that never listens, so node's own timeouts never run on them).
import type http from "node:http";
import type net from "node:net";
import { hasBody } from "./request-target.ts";

export interface Timeouts {
  /** A keep-alive connection with no request in flight is closed after this. */
  idleMs: number;
  /** A request head must be complete this long after the connection opens or the last response ends. */
  headersMs: number;
  /** A request body must be complete this long after its head. */
  requestMs: number;
}

/**
 * headersTimeout and requestTimeout for the sockets handed to a server that never listens:
 * from open() (or the end of the last answer in flight) the next request head must arrive
 * within headersMs; from each head its body must arrive within requestMs. A deadline
 * missed destroys the socket. Nothing runs while an answer streams, however long it takes.
 */
export function tunnelDeadlines(server: http.Server, t: Timeouts) {
  const timers = new WeakMap<net.Socket, ReturnType<typeof setTimeout>>();
  const release = (socket: net.Socket) => clearTimeout(timers.get(socket));
  const arm = (socket: net.Socket, ms: number) => {
    release(socket);
    if (socket.destroyed) return;
    const timer = setTimeout(() => socket.destroy(), ms);
    timer.unref();
    timers.set(socket, timer);
  };
  // Answers not yet finished per socket: a pipelined request's answer may still stream
  // when the one before it ends. Bodies arrive one after another, so one timer serves them.
  const answering = new WeakMap<net.Socket, number>();
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket;
    answering.set(socket, (answering.get(socket) ?? 0) + 1);
    // A bodiless request's 'end' is not a signal to wait for (Deno emits it only after the answer).
    if (!hasBody(req)) release(socket);
    else {
      arm(socket, t.requestMs);
      req.once("end", () => res.writableFinished || release(socket));
    }
    res.once("finish", () => {
      const left = answering.get(socket)! - 1;
      answering.set(socket, left);
      if (left === 0) arm(socket, t.headersMs);
    });
  });
  return {
    open(socket: net.Socket) {
      arm(socket, t.headersMs);
      socket.once("close", () => release(socket));
    },
    release,
  };
}
