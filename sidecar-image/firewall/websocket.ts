// What the agent sends over a WebSocket is scanned like a request body. After the 101 the
// firewall stops relaying client bytes blindly: it parses the client's frames (RFC 6455
// 5.2), unmasks each message's payload, scans it, and only then forwards the frames exactly
// as they came. A fragmented message is held until its last fragment, so a secret split
// across fragments is still seen whole. Server-to-client frames stream back unscanned, as
// HTTP responses do.
//
// Compression is kept off rather than inflated: the upgrade request goes upstream without
// Sec-WebSocket-Extensions, so no extension is negotiated, and a frame with an RSV bit set
// (compressed or otherwise extended) is refused instead of forwarded unread.
//
// What a message holds while it waits for its verdict (its frames as received, their
// unmasked payload, the bytes of a frame not yet whole) is charged to the firewall's body
// budget (body-budget.ts); one that does not fit closes the connection with 1013.
//
// After the firewall's close frame the agent's socket lingers (linger.ts) until the agent
// answers with its own close frame (RFC 6455 7.1.1: the server closes TCP once both are
// sent), ends, or a bound passes: what it sends meanwhile is dropped unread, never
// forwarded, and a socket cut at once could reset the connection before the agent read
// the close frame and its reason.
import { Buffer } from "node:buffer";
import type { Duplex } from "node:stream";
import { frameLength, serverFrame } from "../../lib/ws/frame.ts";
import type { BodyBudget, BodyCharge } from "./body-budget.ts";
import { LINGER, type Linger, lingeringClose } from "./linger.ts";

export interface WsBlock {
  /** Close code sent to the client: 1008 policy violation, 1009 too big, 1002 protocol
   * error, 1013 try again later (no room in the body budget: not a refusal). */
  code: 1002 | 1008 | 1009 | 1013;
  reason: string;
}

/** A close for want of budget. Its reason is short: a close frame carries at most 123 bytes of it. */
export const OVER_BUDGET: WsBlock = { code: 1013, reason: "the firewall has no room to hold this message for scanning now (--body-budget); try again later" };

/** A scan's verdict: null forwards the message, a reason blocks it (1008), a WsBlock closes with its code. */
export type Verdict = string | null | WsBlock;

export interface WsScanOptions {
  /** Scan one complete message (or control frame) payload. A promise holds the relay
   * until it settles (a large message scanned on the worker). What the scan holds besides
   * `payload` (the worker's copy) it takes from `charge`, given back once it settles;
   * OVER_BUDGET when that has no room. */
  scan(payload: Buffer, what: string, charge: BodyCharge): Verdict | Promise<Verdict>;
  /** The largest message held for scanning; a larger one is refused (1009). */
  maxMessageBytes: number;
  /** What messages held for scanning take from; past it the connection closes with 1013. */
  budget: BodyBudget;
  /** Called once when the connection is cut for a block, before both sides close. */
  onBlock(block: WsBlock): void;
  /** Called instead of onBlock when it is cut for want of budget (1013): nothing was refused. */
  onOverBudget(block: WsBlock): void;
  /** How long the agent's socket waits for its close frame after the firewall's (default LINGER). */
  linger?: Linger;
}

const EMPTY = Buffer.alloc(0);

const OPCODES: Record<number, string> = { 0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong" };

interface Frame {
  fin: boolean;
  opcode: number;
  /** The frame as received (masked), forwarded byte for byte when clean. */
  raw: Buffer;
  /** The unmasked payload, for scanning. */
  payload: Buffer;
}

type Parsed = { frame: Frame; used: number } | { need: number } | { error: WsBlock };

/** Parse one client frame from the front of `buf`. */
export function parseClientFrame(buf: Buffer, maxPayload: number): Parsed {
  if (buf.length < 2) return { need: 2 };
  const b0 = buf[0]!;
  const b1 = buf[1]!;
  const opcode = b0 & 0x0f;
  if (b0 & 0x70) return { error: { code: 1002, reason: "frame uses an extension (RSV bit set), which the firewall cannot scan" } };
  if (!(opcode in OPCODES)) return { error: { code: 1002, reason: `unknown frame opcode ${opcode}` } };
  if (!(b1 & 0x80)) return { error: { code: 1002, reason: "client frame is not masked" } };
  const length = frameLength(buf);
  if (!length) return { need: (b1 & 0x7f) === 126 ? 4 : 10 };
  const { len, at } = length;
  if (opcode >= 8 && (len > 125 || !(b0 & 0x80))) return { error: { code: 1002, reason: "control frame is fragmented or over 125 bytes" } };
  if (len > maxPayload) return { error: { code: 1009, reason: `message is over ${maxPayload / 1048576} MiB, too large to scan` } };
  const total = at + 4 + len;
  if (buf.length < total) return { need: total };
  const payload = unmask(buf.subarray(at + 4, total), buf.subarray(at, at + 4));
  return { frame: { fin: (b0 & 0x80) !== 0, opcode, raw: buf.subarray(0, total), payload }, used: total };
}

/** A copy of `masked` with the 4-byte `mask` undone; four bytes at a time where the copy
 * is aligned for it (about 3x faster on a 16 MiB message, which is all event-loop time). */
export function unmask(masked: Buffer, mask: Buffer): Buffer {
  const out = Buffer.allocUnsafe(masked.length);
  masked.copy(out);
  let i = 0;
  if (out.length >= 16 && out.byteOffset % 4 === 0) {
    // The mask as one word in this platform's byte order, as Int32Array reads the payload.
    const word = new Int32Array(Uint8Array.from(mask).buffer)[0]!;
    const words = new Int32Array(out.buffer, out.byteOffset, out.length >>> 2);
    for (let w = 0; w < words.length; w++) words[w] = words[w]! ^ word;
    i = words.length << 2;
  }
  for (; i < out.length; i++) out[i] = out[i]! ^ mask[i & 3]!;
  return out;
}

/** A close frame from the firewall to the client (server frames are not masked). */
export function closeFrame(block: WsBlock): Buffer {
  let reason = Buffer.from(block.reason, "utf8");
  if (reason.length > 123) reason = reason.subarray(0, 123); // control payload max 125 with the code
  const code = Buffer.alloc(2);
  code.writeUInt16BE(block.code);
  return serverFrame(true, 8, Buffer.concat([code, reason]));
}

/**
 * A watcher of the agent's frames after the firewall's close frame, holding none of them
 * (only a header split across reads): true once the agent's own close frame is whole.
 */
export function closeFrameWatcher(): (chunk: Buffer) => boolean {
  let head = EMPTY;
  let skip = 0;
  return (chunk) => {
    let rest = chunk;
    for (;;) {
      const n = Math.min(skip, rest.length);
      skip -= n;
      rest = rest.subarray(n);
      if (!rest.length) return false;
      const buf = head.length ? Buffer.concat([head, rest]) : rest;
      const length = buf.length < 2 ? null : frameLength(buf);
      const total = length && length.at + (buf[1]! & 0x80 ? 4 : 0) + length.len;
      const close = (buf[0]! & 0x0f) === 8;
      if (!total || (close && buf.length < total)) {
        // A header (or a close frame, at most 131 bytes) not yet whole.
        head = Buffer.from(buf.subarray(0, close ? 131 : 14));
        return false;
      }
      if (close) return true;
      head = EMPTY;
      skip = total;
      rest = buf;
    }
  };
}

/** Either stream ending or failing destroys both: a relay is one connection to its ends.
 * What it returns unties them (the streams stay as they are). */
export function closeTogether(a: Duplex, b: Duplex): () => void {
  const done = () => {
    a.destroy();
    b.destroy();
  };
  a.on("error", done).on("close", done);
  b.on("error", done).on("close", done);
  return () => {
    for (const s of [a, b]) s.off("error", done).off("close", done);
  };
}

/** More fragments than any client sends for one message (16 MiB in 4 KiB pieces). */
export const MAX_FRAGMENTS = 4096;

/**
 * Relay client -> upstream frame by frame, scanning each message; `head` is what the
 * client sent after its upgrade request. Upstream -> client is piped as is. Either side
 * closing closes both.
 *
 * A scan may answer later (a large message goes to the scan worker): the client is then
 * paused and nothing after that message is parsed or forwarded until the verdict, so
 * frames reach the upstream in the order they came, and a blocked message's successors
 * never do.
 *
 * Bytes are charged to the budget as they arrive; a frame once whole moves to its
 * message's charge with its unmasked payload; the message's charge is given back when it
 * is forwarded or refused, or when the connection ends while it is still being put
 * together. One waiting on the scan worker keeps its charge until the worker answers,
 * however the connection ended, since the worker holds its copy until then.
 */
export function relayWebSocket(client: Duplex, upstream: Duplex, head: Buffer, opts: WsScanOptions): void {
  // Bytes of a frame not yet whole, kept as received and joined once the frame is: joining
  // on every chunk would copy a 16 MiB frame sent in small pieces thousands of times.
  let held: Buffer[] = [];
  let heldBytes = 0;
  // What pump() is parsing, from the start of the next frame not yet taken (empty outside it).
  let parsing: Buffer = EMPTY;
  let needed = 0;
  const unparsed = opts.budget.charge();
  let message: Frame[] = [];
  let messageBytes = 0;
  let assembling = opts.budget.charge();
  let cut = false;
  let ended = false;
  // Why the client is paused: a scan answering later, the upstream's buffer full, or both.
  let scanning = false;
  let draining = false;

  const untie = closeTogether(client, upstream);
  upstream.pipe(client);

  /** Let go of what is held and not yet scanning: the connection is over. */
  const drop = () => {
    held = [];
    heldBytes = 0;
    message = [];
    unparsed.release();
    assembling.release();
  };
  client.once("close", drop);

  /**
   * Once the agent has sent its last byte (its socket half-closed: the firewall's sockets
   * allow that, so no close follows by itself) and all it sent whole is relayed, what is
   * left can never be finished: let go of it, and end the upstream's side as a pipe would.
   */
  const endIfDone = () => {
    if (!ended || scanning || cut) return;
    drop();
    upstream.end();
  };
  client.once("end", () => {
    ended = true;
    endIfDone();
  });

  const flow = () => {
    if (cut) return; // the lingering close reads the agent now
    if (scanning || draining) client.pause();
    else client.resume();
  };

  /** Cut the connection for `b`; `late` is a chunk that arrived and was not taken. */
  const block = (b: WsBlock, late?: Buffer) => {
    if (cut) return;
    cut = true;
    if (b.code === 1013) opts.onOverBudget(b);
    else opts.onBlock(b);
    client.off("data", onData);
    // What came after the last frame taken, read only for the agent's close frame.
    const rest = [parsing, ...held, ...(late ? [late] : [])];
    parsing = EMPTY;
    drop();
    untie(); // the agent's socket outlives the upstream's, for the closing handshake
    upstream.unpipe(client);
    upstream.destroy();
    const closed = closeFrameWatcher();
    // Its close frame already here: the handshake is done once the firewall's is written.
    if (rest.some((c) => closed(c))) {
      client.once("error", () => client.destroy());
      return void client.end(closeFrame(b), () => client.destroy());
    }
    lingeringClose(client, opts.linger ?? LINGER, { answer: closeFrame(b), done: closed });
  };

  const forward = (frames: Frame[]) => {
    const bytes = frames.length === 1 ? frames[0]!.raw : Buffer.concat(frames.map((f) => f.raw));
    if (!upstream.write(bytes) && !draining) {
      draining = true;
      flow();
      upstream.once("drain", () => {
        draining = false;
        flow();
      });
    }
  };

  /** Forward `frames` unless `verdict` blocks them. */
  const settle = (verdict: Verdict, frames: Frame[]): boolean => {
    if (verdict !== null) {
      block(typeof verdict === "string" ? { code: 1008, reason: verdict } : verdict);
      return false;
    }
    forward(frames);
    return true;
  };

  /** Parse and relay what is held, up to a frame not yet whole or a scan answering later. */
  const pump = () => {
    if (cut || scanning || heldBytes < needed || heldBytes === 0) return;
    parsing = held.length === 1 ? held[0]! : Buffer.concat(held, heldBytes);
    held = [];
    heldBytes = 0;
    let parsed = false;
    const hold = () => {
      if (parsing.length) {
        // A copy once frames were taken from the buffer, so the rest does not pin all of it.
        held = [parsed ? Buffer.from(parsing) : parsing];
        heldBytes = parsing.length;
      }
      parsing = EMPTY;
    };
    for (;;) {
      const p = parseClientFrame(parsing, opts.maxMessageBytes - messageBytes);
      if ("error" in p) return block(p.error);
      if ("need" in p) {
        needed = p.need;
        return hold();
      }
      needed = 0;
      parsing = parsing.subarray(p.used);
      parsed = true;
      const f = p.frame;
      // Frames are copied out of `parsing` so a held message does not pin the whole buffer.
      f.raw = Buffer.from(f.raw);
      unparsed.giveBack(p.used);
      let frames: Frame[];
      let charge: BodyCharge;
      let verdict: ReturnType<WsScanOptions["scan"]>;
      if (f.opcode >= 8) {
        // Control frames may arrive between fragments; each is complete on its own.
        charge = opts.budget.charge();
        if (!charge.take(f.raw.length + f.payload.length)) return block(OVER_BUDGET);
        frames = [f];
        verdict = opts.scan(f.payload, `websocket ${OPCODES[f.opcode]} frame`, charge);
      } else {
        if ((f.opcode === 0) !== message.length > 0) return block({ code: 1002, reason: f.opcode === 0 ? "continuation frame without a message to continue" : "new message before the last one ended" });
        message.push(f);
        if (!assembling.take(f.raw.length + f.payload.length)) return block(OVER_BUDGET);
        // Framing counts too, and fragments are capped: empty continuation frames would
        // otherwise be held without limit (6 bytes on the wire, far more in memory each).
        messageBytes += f.raw.length;
        if (message.length > MAX_FRAGMENTS) return block({ code: 1009, reason: `message in more than ${MAX_FRAGMENTS} fragments` });
        if (!f.fin) continue;
        frames = message;
        message = [];
        messageBytes = 0;
        charge = assembling;
        assembling = opts.budget.charge();
        // The fragments' payloads joined into one take the place of theirs: the charge stands.
        const whole = frames.length === 1 ? f.payload : Buffer.concat(frames.map((m) => m.payload));
        for (const m of frames) m.payload = EMPTY;
        verdict = opts.scan(whole, `websocket ${OPCODES[frames[0]!.opcode]} message`, charge);
      }
      if (!(verdict instanceof Promise)) {
        charge.release();
        if (!settle(verdict, frames)) return;
        continue;
      }
      // The verdict comes later: hold the rest unparsed, and the client's further bytes too.
      hold();
      scanning = true;
      flow();
      verdict.then(
        (v) => {
          charge.release();
          scanning = false;
          if (cut || client.destroyed || !settle(v, frames)) return;
          flow();
          pump();
          endIfDone();
        },
        (e: Error) => {
          charge.release();
          block({ code: 1008, reason: `the message could not be scanned (${e.message})` });
        },
      );
      return;
    }
  };

  const onData = (chunk: Buffer) => {
    if (!unparsed.take(chunk.length)) return block(OVER_BUDGET, chunk);
    held.push(chunk);
    heldBytes += chunk.length;
    pump();
  };
  client.on("data", onData);
  if (head.length) onData(head);
}
