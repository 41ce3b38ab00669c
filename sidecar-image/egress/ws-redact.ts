// Masking the injected credential in what a routed WebSocket upstream sends. Searching the
// raw byte stream misses a credential that a frame boundary splits: the next frame's
// header sits in the middle of it, and the agent reassembles the message. So the server's
// frames are read one by one; each message's payload runs through one SecretMasker across
// its fragments, and every frame goes on re-framed with what the masker lets out (a tail
// that could begin the credential moves to the next fragment). Frames egress cannot read
// (compressed, which egress never lets the two sides agree on, or masked, which a server
// must never send) end the connection instead of passing unsearched.
import { Buffer } from "node:buffer";
import { Transform, type TransformCallback } from "node:stream";
import { frameLength, serverFrame } from "../../lib/ws/frame.ts";
import { maskAll, SecretMasker, type Secret } from "./redact.ts";

/** The largest server frame held whole; a bigger one ends the connection. */
const MAX_SERVER_FRAME = 16 * 1024 * 1024;

interface ServerFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
  used: number;
}

/** `need`: how many bytes the frame takes in all, once its header says (else 0). */
type Parsed = { frame: ServerFrame } | { need: number } | { error: string };

/** One frame from the start of `buf`, as a server sends it (unmasked, no RSV bits). */
function parseServerFrame(buf: Buffer, maxPayload = MAX_SERVER_FRAME): Parsed {
  if (buf.length < 2) return { need: 0 };
  if (buf[0]! & 0x70) return { error: "a frame with RSV bits set (compressed?), which egress cannot search" };
  if (buf[1]! & 0x80) return { error: "a masked frame, which a server must never send" };
  const length = frameLength(buf);
  if (!length) return { need: 0 };
  const { len, at } = length;
  if (len > maxPayload) return { error: `a frame over ${maxPayload / 1048576} MiB` };
  if (buf.length < at + len) return { need: at + len };
  return { frame: { fin: (buf[0]! & 0x80) !== 0, opcode: buf[0]! & 0x0f, payload: buf.subarray(at, at + len), used: at + len } };
}

export class WsRedactor extends Transform {
  /** Bytes of an incomplete frame, kept as chunks until the whole frame is here. */
  #chunks: Buffer[] = [];
  #size = 0;
  #needed = 0;
  /** The current message's masker; null between messages. */
  #message: SecretMasker | null = null;

  constructor(private readonly secrets: readonly Secret[]) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    if (this.#size < this.#needed) return done(); // a big frame arriving: no copy per chunk
    let buf = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#size);
    const out: Buffer[] = [];
    for (;;) {
      const p = parseServerFrame(buf);
      if ("need" in p) {
        this.#needed = p.need;
        break;
      }
      if ("error" in p) return done(new Error(`routed WebSocket upstream sent ${p.error}`));
      const f = p.frame;
      buf = buf.subarray(f.used);
      if (f.opcode >= 8) {
        // Control frames are whole (125 bytes at most) and may come between fragments.
        out.push(serverFrame(f.fin, f.opcode, maskAll(f.payload, this.secrets)));
        continue;
      }
      this.#message ??= new SecretMasker(this.secrets);
      let payload = this.#message.push(f.payload);
      if (f.fin) {
        const rest = this.#message.flush();
        if (rest.length) payload = Buffer.concat([payload, rest]);
        this.#message = null;
      }
      out.push(serverFrame(f.fin, f.opcode, payload));
    }
    // Copied, so a partial frame does not pin the chunk it arrived in.
    this.#chunks = buf.length ? [Buffer.from(buf)] : [];
    this.#size = buf.length;
    done(null, out.length === 1 ? out[0] : out.length ? Buffer.concat(out) : undefined);
  }
}
