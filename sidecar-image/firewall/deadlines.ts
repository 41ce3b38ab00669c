// Time limits for the connections the firewall serves itself (intercepted tunnels are
// handed to an http.Server that never listens, so node's own timeouts never run on them).
import type http from "node:http";
import type net from "node:net";
import { REQUEST_TIMEOUT } from "./client-error.ts";
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
 * missed is the server's 'clientError', as node raises it on a server that listens (a 408,
 * client-error.ts; with no one listening for that, the socket is destroyed), except on a
 * connection left idle after an answer, which node never times out so (its keep-alive
 * timeout does) and which is destroyed without a word. Nothing runs while an answer
 * streams, however long it takes.
 */
export function tunnelDeadlines(server: http.Server, t: Timeouts) {
  const timers = new WeakMap<net.Socket, ReturnType<typeof setTimeout>>();
  const release = (socket: net.Socket) => clearTimeout(timers.get(socket));
  /** `idle`: armed after an answer, so a deadline met with no byte since is an idle connection's. */
  const arm = (socket: net.Socket, ms: number, idle = false) => {
    release(socket);
    if (socket.destroyed) return;
    const read = socket.bytesRead;
    const timer = setTimeout(() => {
      if (idle && socket.bytesRead === read) return void socket.destroy();
      const e = Object.assign(new Error("Request timeout"), { code: REQUEST_TIMEOUT });
      if (!server.emit("clientError", e, socket)) socket.destroy();
    }, ms);
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
      if (left === 0) arm(socket, t.headersMs, true);
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
