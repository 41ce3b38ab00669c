// Types of ws-frame.mjs.
import type { Buffer } from "node:buffer";

/** A WebSocket frame (text unless `o.opcode` says otherwise); clients must mask theirs. */
export function wsFrame(text: string | Buffer, mask: boolean, o?: { fin?: boolean; opcode?: number; rsv1?: boolean }): Buffer;

export interface WsFrame {
  opcode: number;
  payload: Buffer;
  /** Bytes the frame took. */
  size: number;
}

/** Decode one frame (masked or not, any length); null until it is complete. */
export function parseWsFrame(buf: Buffer): WsFrame | null;
